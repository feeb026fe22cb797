// Run the CLI from TypeScript sources (development and tests): `npx tsx src/cli/run.ts <command> ...`.
import { main } from "./main.js";

await main(process.argv);
