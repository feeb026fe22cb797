import { getKernels } from "../src/train/kernels/index.js";
const k = getKernels("native");
const threads = Number(process.argv[2] ?? "1");
k.setThreads?.(threads);
const cases = [ {V:1024,C:64,BT:2048}, {V:4096,C:256,BT:2048}, {V:512,C:96,BT:512} ];
for (const {V,C,BT} of cases) {
  const lnf = new Float32Array(BT*C).map(()=>Math.random()-0.5);
  const wte = new Float32Array(V*C).map(()=>(Math.random()-0.5)*0.1);
  const tg = new Int32Array(BT).map(()=>Math.floor(Math.random()*V));
  const losses = new Float32Array(BT), dlnf = new Float32Array(BT*C), dwte = new Float32Array(V*C);
  const logits = new Float32Array(BT*V), dlog = new Float32Array(BT*V);
  const time = (f: ()=>void, reps=30) => { for (let i=0;i<3;i++) f(); const t0=performance.now(); for(let i=0;i<reps;i++) f(); return (performance.now()-t0)/reps; };
  const head = time(()=>k.logitsCrossEntropy(losses,dlnf,dwte,lnf,wte,tg,BT,C,V,1/BT));
  const fwd = time(()=>k.matmulForward(logits,lnf,wte,null,BT,C,V));
  const ce = time(()=>k.crossEntropyForward(losses,dlog,logits,tg,BT,V,1/BT));
  const bwd = time(()=>k.matmulBackward(dlnf,dwte,null,dlog,lnf,wte,BT,C,V,true));
  const fl = 6*BT*V*C/1e9;
  console.log(`V${V} C${C} BT${BT} t${threads}: head ${head.toFixed(3)} ms (${(fl/head*1e3).toFixed(0)} GF/s) | fwd ${fwd.toFixed(3)} ce ${ce.toFixed(3)} bwd ${bwd.toFixed(3)} sum ${(fwd+ce+bwd).toFixed(3)}`);
}
