import { writeReport } from "../report/index.js";
import { type Command, collect } from "./options.js";

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
    .action(async (workspace: string, opts: { title?: string; note: string[]; quiet?: boolean }) => {
      const out = await writeReport(workspace, { title: opts.title, notes: opts.note });
      console.log(out.html);
      if (opts.quiet) return;
      for (const f of out.findings) console.log(`- ${f}`);
      const seen = new Set<string>();
      for (const s of out.skipped) {
        if (seen.has(s.what)) continue;
        seen.add(s.what);
        console.log(`(not shown: ${s.what}: ${s.why})`);
      }
    });
}
