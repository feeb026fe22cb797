import { type ReportOutput, writeReport } from "../report/index.js";
import { type Command, collect, JSON_HELP, printResult } from "./options.js";

/** `synthmix report ws/`: thin wrapper over src/report/. Prints the report path, then the key findings. */
export function register(program: Command): void {
  program
    .command("report")
    .description(
      "write <workspace>/report/index.html (self-contained), a PNG per chart and summary.md from results/*.json",
    )
    .argument("<workspace>", "study workspace holding results/*.json")
    .option("--title <text>", "report title")
    .option("--note <text>", "add a note to the report's Notes section (repeatable)", collect, [] as string[])
    .option("--quiet", "print only the report path")
    .option("--json", `${JSON_HELP}: {html, pngs, summary, findings, skipped}`)
    .action(
      async (
        workspace: string,
        opts: { title?: string; note: string[]; quiet?: boolean; json?: boolean },
      ) => {
        const out = await writeReport(workspace, { title: opts.title, notes: opts.note });
        printResult(opts.json, out, () => formatReport(out, opts.quiet));
      },
    );
}

function formatReport(out: ReportOutput, quiet?: boolean): string {
  if (quiet) return out.html;
  const lines = [out.html, ...out.findings.map((f) => `- ${f}`)];
  const seen = new Set<string>();
  for (const s of out.skipped) {
    if (seen.has(s.what)) continue;
    seen.add(s.what);
    lines.push(`(not shown: ${s.what}: ${s.why})`);
  }
  return lines.join("\n");
}
