// Encodes a text file with Hugging Face tokenizers (the Node binding) loading a tokenizer.json, the
// way nuri-bench-tokenizer encodes it (each non-empty line on its own), and prints one JSON line:
// {"mb_per_s", "tokens", "lines", "bytes", "rounds"}. MB/s is the median over the rounds of one
// encodeBatch call over all lines. Threads are the binding's: TOKENIZERS_PARALLELISM=false encodes
// on one thread, RAYON_NUM_THREADS=N on N.
// Usage: node hf_encode.js TOKENIZER_JSON TEXT_FILE [ROUNDS]
'use strict'
const fs = require('fs')
const { Tokenizer } = require('tokenizers')

async function main() {
  const [tokenizerPath, textPath, roundsArg = '9'] = process.argv.slice(2)
  if (!tokenizerPath || !textPath) {
    console.error('usage: node hf_encode.js TOKENIZER_JSON TEXT_FILE [ROUNDS]')
    process.exit(2)
  }
  const rounds = Number.parseInt(roundsArg, 10)
  if (!(rounds > 0)) throw new Error(`ROUNDS must be a positive integer, got ${roundsArg}`)
  const tokenizer = Tokenizer.fromFile(tokenizerPath)
  const lines = fs.readFileSync(textPath, 'utf8').split('\n').filter((line) => line.length > 0)
  if (lines.length === 0) throw new Error(`${textPath} has no text`)
  const bytes = lines.reduce((sum, line) => sum + Buffer.byteLength(line, 'utf8'), 0)
  const options = { addSpecialTokens: false }

  const warm = await tokenizer.encodeBatch(lines, options)
  const tokens = warm.reduce((sum, encoding) => sum + encoding.getLength(), 0)
  const seconds = []
  for (let i = 0; i < rounds; ++i) {
    const start = process.hrtime.bigint()
    await tokenizer.encodeBatch(lines, options)
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9)
  }
  seconds.sort((a, b) => a - b)
  const median = seconds[Math.floor(seconds.length / 2)]
  console.log(JSON.stringify({ mb_per_s: bytes / 1e6 / median, tokens, lines: lines.length, bytes, rounds }))
}

main().catch((error) => {
  console.error(`hf_encode: ${error.message}`)
  process.exit(1)
})
