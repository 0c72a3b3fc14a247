// The GraphQL client against a real HTTP server on loopback that answers as AppSync does.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Api, ApiError } from '../src/app/api';

async function server(answer: (body: any, req: IncomingMessage) => [number, unknown, Record<string, string>?]) {
  const seen: { body: any; headers: IncomingMessage['headers'] }[] = [];
  const s = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw);
      seen.push({ body, headers: req.headers });
      const [status, json, headers] = answer(body, req);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(json));
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/graphql`;
  return { url, seen, close: () => s.close() };
}

test('issueChatToken sends the operation with the API key and answers the receipt', async () => {
  const s = await server(() => [200, { data: { issueChatToken: { token: 't', xid: 'x', expiresAt: 99 } } }]);
  try {
    const r = await new Api(s.url, 'da2-key').issueChatToken('device-1', 'ctx-token');
    assert.deepEqual(r, { token: 't', xid: 'x', expiresAt: 99 });
    assert.equal(s.seen[0]!.headers['x-api-key'], 'da2-key');
    assert.match(s.seen[0]!.body.query, /^mutation issueChatToken\(/);
    assert.deepEqual(s.seen[0]!.body.variables, { deviceId: 'device-1', token: 'ctx-token' });
  } finally {
    s.close();
  }
});

test("refusals carry the contract's errorType, and TooManyRequests its seconds", async () => {
  const s = await server((body) =>
    body.variables.token === 'limited'
      ? [200, { data: null, errors: [{ errorType: 'TooManyRequests', message: 'Too many tokens. Try again in 12 s.' }] }]
      : [200, { data: null, errors: [{ errorType: 'AccessDenied', message: 'The token has expired.' }] }],
  );
  try {
    const api = new Api(s.url, null);
    await assert.rejects(api.issueChatToken('d', 'old'), (e: ApiError) => e.type === 'AccessDenied' && e.message === 'The token has expired.');
    await assert.rejects(api.issueChatToken('d', 'limited'), (e: ApiError) => e.type === 'TooManyRequests' && e.retryAfterSecs === 12);
    assert.equal(s.seen[0]!.headers['x-api-key'], undefined);
  } finally {
    s.close();
  }
});

test('notification calls answer what the API says', async () => {
  const s = await server((body) => {
    const name = /mutation (\w+)/.exec(body.query)![1]!;
    const data: Record<string, unknown> = {
      enableChannelNotifications: { emailVerified: false },
      verifyEmail: body.variables.code === '123456',
      enableChannelSmsNotifications: { phoneVerified: true },
      verifyPhone: false,
    };
    return [200, { data: { [name]: data[name] } }];
  });
  try {
    const api = new Api(s.url, 'k');
    assert.equal(await api.enableEmail('general', 'a@example.org', 't'), false);
    assert.equal(await api.verifyEmail('a@example.org', '123456', 't'), true);
    assert.equal(await api.verifyEmail('a@example.org', '000000', 't'), false);
    assert.equal(await api.enableSms('general', '+4915112345678', 't'), true);
    assert.equal(await api.verifyPhone('+4915112345678', '1', 't'), false);
    assert.deepEqual(s.seen[0]!.body.variables, { channel: 'general', email: 'a@example.org', token: 't' });
  } finally {
    s.close();
  }
});

test('no server, or one that answers no JSON, is a Network or InternalError refusal', async () => {
  await assert.rejects(new Api('http://127.0.0.1:9/graphql', null).issueChatToken('d', 't'), (e: ApiError) => e.type === 'Network');
  const s = await server(() => [502, 'not json' as unknown]);
  try {
    await assert.rejects(new Api(s.url, null).issueChatToken('d', 't'), (e: ApiError) => e.type === 'Network' || e.type === 'InternalError');
  } finally {
    s.close();
  }
});
