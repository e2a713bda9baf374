// Produces seed_signature.json: the signature that a webhook receiver hashing JSON.stringify of
// the parsed body expects for a token.rotated delivery (such a receiver works unchanged: README
// "Webhooks", Verifying a signature). The HMAC line is that receiver's, unchanged; `req.body` is
// what express.json() makes of the raw body. Run: node seed_signature.mjs > seed_signature.json
import crypto from 'crypto';

const WEBHOOK_SECRET = 'whsec_HSx2lpNsD5gKMv7mK0lrh5jtMwIihjhS';
const raw =
  '{"id":"01a21672-866e-74ee-a22d-bff2c4892193","type":"token.rotated","created_at":"2026-11-26T06:02:13.998838Z","workspace":"01a21672-83ea-764f-b192-9bd4570dc893","data":{"expires_at":"2027-02-24T06:02:13.89657Z","id":"01a21672-8609-7347-b8ab-a7029197e3ff","name":"backend-prod","previous_secret_expires_at":"2026-11-26T06:07:13.997817Z","rotation":1,"scopes":["tokens:read"]}}';
const req = { body: JSON.parse(raw) };

const expected = crypto
  .createHmac('sha256', WEBHOOK_SECRET)
  .update(JSON.stringify(req.body))
  .digest('hex');

console.log(JSON.stringify({ secret: WEBHOOK_SECRET, body: raw, signature: `sha256=${expected}` }, null, 2));
