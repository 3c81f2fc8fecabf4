// The official `openai` npm client against moepager serve (tests/test_serve_openai.sh):
// one non-streamed and one streamed chat completion at temperature 0, and one
// non-streamed text completion; prints one JSON line with what it got.
//   node serve_openai_client.mjs NODE_MODULES_DIR BASE_URL MODEL MAX_TOKENS
import { createRequire } from "node:module";
import path from "node:path";
import fs from "node:fs";

const [modulesDir, baseURL, model, maxTokens] = process.argv.slice(2);
const require = createRequire(path.join(modulesDir, "x.js"));
const OpenAIModule = require("openai");
const OpenAI = OpenAIModule.OpenAI || OpenAIModule.default || OpenAIModule;

const client = new OpenAI({ baseURL, apiKey: "none", maxRetries: 0, timeout: 60000 });
const messages = [{ role: "user", content: "import os" }];
const n = Number(maxTokens);

const models = await client.models.list();
const ids = [];
for await (const m of models) ids.push(m.id);

const plain = await client.chat.completions.create({ model, messages, max_tokens: n, temperature: 0 });

const stream = await client.chat.completions.create({
  model, messages, max_tokens: n, temperature: 0, stream: true, stream_options: { include_usage: true },
});
let streamed = "", chunks = 0, finish = null, usage = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    streamed += c.delta?.content ?? "";
    if (c.finish_reason) finish = c.finish_reason;
  }
}

const comp = await client.completions.create({ model, prompt: "def main(", max_tokens: n, temperature: 0 });

let badStatus = null, badType = null;
try {
  await client.chat.completions.create({ model: "no-such-model", messages });
} catch (e) {
  badStatus = e.status;
  badType = e.error?.type ?? e.type ?? null;
}

console.log(JSON.stringify({
  version: JSON.parse(fs.readFileSync(path.join(modulesDir, "openai", "package.json"), "utf8")).version,
  models: ids,
  plain: plain.choices[0].message.content,
  plain_finish: plain.choices[0].finish_reason,
  plain_usage: plain.usage,
  streamed, chunks, finish, usage,
  completion: comp.choices[0].text,
  bad_status: badStatus, bad_type: badType,
}));
