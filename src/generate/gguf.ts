// The GGUF writer lives in src/formats/gguf.ts (training's export writes GGUF too, and train must not
// import from generate). Re-exported here so existing `generate/gguf.js` imports keep working.
export * from "../formats/gguf.js";
