// The official openai Node SDK against the gateway: prints one JSON line of what it parsed.
// Usage: NEXEON_BASE_URL=http://127.0.0.1:8000/v1 NEXEON_KEY=nex-sk-... node sdk_check.mjs
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.NEXEON_BASE_URL,
  apiKey: process.env.NEXEON_KEY,
  maxRetries: 0,
});
const messages = [{ role: "user", content: "Hello from Node" }];
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const completion = await client.chat.completions.create({ model: "gpt-4o", messages });
out.chat = completion.choices[0].message.content;
out.chat_usage = completion.usage.total_tokens;

const stream = await client.chat.completions.create({
  model: "gpt-4o",
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
const ids = new Set();
let usage = null;
for await (const chunk of stream) {
  ids.add(chunk.id);
  if (chunk.choices.length) text += chunk.choices[0].delta.content ?? "";
  if (chunk.usage) usage = chunk.usage.completion_tokens;
}
out.stream = text;
out.stream_ids = ids.size;
out.stream_usage = usage;

const embedding = await client.embeddings.create({
  model: "text-embedding-3-small",
  input: "vector",
  dimensions: 4,
});
out.embedding_length = embedding.data[0].embedding.length;

try {
  await client.chat.completions.create({ model: "gpt-4o", messages, temperature: 5 });
} catch (error) {
  out.error_status = error.status;
  out.error_param = error.param;
}
console.log(JSON.stringify(out));
