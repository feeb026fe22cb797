// The CLI from source (the sbatch example test puts a `synthmix` shim running this on PATH).
import { main } from "../../src/cli/main.js";

await main(process.argv);
