// A fault server as its own process (stands in for vLLM in the sbatch example test):
//   node --import tsx test/generate/fake-server-main.ts PORT [SEED]
import { startFaultServer } from "./fake-server.js";

const srv = await startFaultServer({
  seed: Number(process.argv[3] ?? 1),
  port: Number(process.argv[2]),
  delayMs: 5,
});
console.log(`fake server listening on ${srv.url}`);
process.on("SIGTERM", () => {
  srv.close().then(() => process.exit(0));
});
