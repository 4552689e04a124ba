// Runs GGUFs through llama.cpp (node-llama-cpp's prebuilt CPU binary) and prints, for each model and each position
// of a token sequence, llama.cpp's top next-token probabilities as JSON: {"MODEL": [[[id, p], ...], ...], ...}.
// usage: node probabilities.mjs NODE_LLAMA_CPP_INDEX_JS '[0, 17, ...]' TOP_K MODEL.gguf...
import {pathToFileURL} from "node:url";

const [entry, tokensJson, topK, ...models] = process.argv.slice(2);
const {getLlama} = await import(pathToFileURL(entry).href);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const tokens = JSON.parse(tokensJson);
const out = {};
for (const modelPath of models) {
    const model = await llama.loadModel({modelPath});
    const context = await model.createContext({contextSize: 256});
    const sequence = context.getSequence();
    const results = await sequence.controlledEvaluate(tokens.map((t) => [t, {generateNext: {probabilities: true}}]));
    out[modelPath] = results.map((r) => [...r.next.probabilities.entries()].slice(0, Number(topK)));
    await context.dispose();
    await model.dispose();
}
process.stdout.write(JSON.stringify(out) + "\n");
await llama.dispose();
