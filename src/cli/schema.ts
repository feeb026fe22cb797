import { z } from "zod";
import { corpusConfigSchema } from "../corpus/config.js";
import { StudyConfigSchema } from "../study/config.js";
import { SweepSpecSchema } from "../sweep/spec.js";
import { SynthmixError } from "../util/errors.js";
import type { Command } from "./options.js";

/** The config files a user writes, by the name `synthmix schema <name>` takes. */
const SCHEMAS: Record<string, { schema: z.ZodType; title: string }> = {
  study: { schema: StudyConfigSchema, title: "synthmix study config (study.yaml)" },
  grid: { schema: SweepSpecSchema, title: "synthmix sweep/grid spec (sweep.yaml)" },
  corpus: { schema: corpusConfigSchema, title: "synthmix corpus import options" },
};

/**
 * JSON Schema (draft 2020-12) of a config file, generated from the zod schemas the loaders use (zod v4's
 * z.toJSONSchema), so editors validate and complete exactly what synthmix accepts. Input shapes: keys
 * with defaults are optional. Values zod checks in code (counts such as "2M") appear as their input type.
 */
export function configJsonSchema(name: string): Record<string, unknown> {
  const entry = SCHEMAS[name];
  if (!entry) {
    throw new SynthmixError("BAD_OPTION", `schema: unknown config "${name}"`, {
      hint: `use one of: ${Object.keys(SCHEMAS).join(", ")}`,
    });
  }
  const json = z.toJSONSchema(entry.schema, { io: "input", unrepresentable: "any", target: "draft-2020-12" });
  return { ...json, title: entry.title };
}

export function register(program: Command): void {
  program
    .command("schema")
    .description("print the JSON Schema of a config file (study | grid | corpus), e.g. > study.schema.json")
    .argument("<config>", "study | grid | corpus")
    .action((name: string) => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(name), null, 2)}\n`);
    });
}
