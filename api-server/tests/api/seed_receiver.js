// The signature check of a webhook receiver that hashes JSON.stringify of the parsed body, which
// README "Webhooks" (Verifying a signature) says works unchanged, run on real deliveries.
// express.json() parses the body; the receiver signs JSON.stringify(req.body) and compares.
// Input (stdin): [{"secret": "...", "body": "<raw body>", "signature": "<X-Tooken-Signature>"}]
// Output: one line per delivery, "ok" or "mismatch".
const crypto = require('crypto');
let input = '';
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  for (const { secret, body, signature } of JSON.parse(input)) {
    const reqBody = JSON.parse(body);
    const expected = crypto
      .createHmac('sha256', secret)
      .update(JSON.stringify(reqBody))
      .digest('hex');
    console.log(signature === `sha256=${expected}` ? 'ok' : 'mismatch');
  }
});
