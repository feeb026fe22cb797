import { SynthmixError } from "../../util/errors.js";

export interface SamplingParams {
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
  /** Stop sequences (honoured by the local GGUF backend and `synthmix serve`). */
  stop?: string[];
}

export interface GenRequest {
  /** Stable request id (the request key), for error messages and server logs. */
  id: string;
  messages: { role: "system" | "user" | "assistant"; content: string }[];
  /** Single-string form of the same prompt, for base models (/v1/completions). */
  prompt: string;
  params: SamplingParams;
  signal?: AbortSignal;
  /** Streaming: called with each piece of answer text as it is generated (local backend only). */
  onText?: (text: string) => void;
}

export interface GenUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export interface GenResponse {
  text: string;
  /** "stop", "length", ... as in the OpenAI API. */
  finishReason?: string;
  usage?: GenUsage;
}

/** One place that answers requests: an HTTP endpoint or a loaded local model. */
export interface Endpoint {
  /** For messages and logs, e.g. the base URL. */
  readonly label: string;
  readonly concurrency: number;
  generate(req: GenRequest): Promise<GenResponse>;
  close?(): Promise<void>;
}

/**
 * A failed generation request. `retryable` marks timeouts, 429, 5xx and transport errors; the runner
 * retries those with backoff and counts the rest as permanent failures.
 */
export class GenerationError extends SynthmixError {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly extra: { status?: number; retryAfterMs?: number; endpoint?: string } = {},
    options?: { hint?: string; cause?: unknown },
  ) {
    super("GENERATION", message, options);
    this.name = "GenerationError";
  }
}
