import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, type ChatTokenReceipt } from '../src/app/api';
import { AccessEnded, backoffMs, Session } from '../src/app/session';

const receipt = (token: string): ChatTokenReceipt => ({ token: `chat-for-${token}`, xid: 'x1', expiresAt: 2_000_000_000 });

/** A session whose API answers from a script, one answer per call, and whose clock is fake. */
function scripted(answers: (ApiError | null)[], getContextToken?: () => Promise<string>, contextToken: string | null = 'old') {
  const calls: string[] = [];
  const slept: number[] = [];
  const waiting: number[] = [];
  const session = new Session({
    issueChatToken: async (_device, token) => {
      calls.push(token);
      const answer = answers.shift();
      if (answer) throw answer;
      return receipt(token);
    },
    deviceId: 'd1',
    contextToken,
    getContextToken: getContextToken ?? null,
    onWaiting: (s) => waiting.push(s),
    sleep: async (ms) => void slept.push(ms),
  });
  return { session, calls, slept, waiting };
}

test('a refused (expired) context token is asked for afresh once, and the chat goes on', async () => {
  let asked = 0;
  const s = scripted([new ApiError('AccessDenied', 'The token has expired.'), null], async () => `fresh${++asked}`);
  const r = await s.session.chatToken();
  assert.equal(r.token, 'chat-for-fresh1');
  assert.deepEqual(s.calls, ['old', 'fresh1']);
  assert.equal(asked, 1);
});

test('refused again with a fresh token: the access has ended', async () => {
  const s = scripted(
    [new ApiError('AccessDenied', 'revoked'), new ApiError('AccessDenied', 'revoked')],
    async () => 'fresh',
  );
  await assert.rejects(s.session.chatToken(), AccessEnded);
  assert.deepEqual(s.calls, ['old', 'fresh']);
});

test('without getContextToken a refusal ends the access at once', async () => {
  const s = scripted([new ApiError('AccessDenied', 'no')]);
  await assert.rejects(s.session.chatToken(), AccessEnded);
  assert.equal(s.calls.length, 1);
});

test('with no token given, the page is asked first', async () => {
  const s = scripted([null], async () => 'given', null);
  assert.equal((await s.session.chatToken()).token, 'chat-for-given');
  assert.deepEqual(s.calls, ['given']);
});

test('TooManyRequests waits the seconds the API named, then goes on', async () => {
  const s = scripted([new ApiError('TooManyRequests', 'Too many. Try again in 7 s.', 7), null]);
  await s.session.chatToken();
  assert.deepEqual(s.waiting, [7]);
  assert.deepEqual(s.slept, [7000]);
});

test('no answer retries with growing waits; other refusals are not retried', async () => {
  const s = scripted([new ApiError('Network', 'down'), new ApiError('Network', 'down'), new ApiError('InternalError', 'x'), null]);
  await s.session.chatToken();
  assert.equal(s.slept.length, 3);
  assert.ok(s.slept[0]! < s.slept[2]!, `${s.slept}`);
  const bad = scripted([new ApiError('BadRequest', 'no such thing')]);
  await assert.rejects(bad.session.chatToken(), (e: ApiError) => e.type === 'BadRequest');
  assert.equal(bad.calls.length, 1);
});

test('backoff grows to 30 s and no further, with jitter of ±25 %', () => {
  assert.equal(backoffMs(0, () => 0.5), 1000);
  assert.equal(backoffMs(3, () => 0.5), 8000);
  assert.equal(backoffMs(20, () => 0.5), 30_000);
  assert.equal(backoffMs(20, () => 0), 22_500);
  assert.equal(backoffMs(20, () => 1), 37_500);
});

test('a page-handed token replaces the old one for the next call', async () => {
  const s = scripted([null, null]);
  await s.session.chatToken();
  s.session.useContextToken('newer');
  await s.session.chatToken();
  assert.deepEqual(s.calls, ['old', 'newer']);
});

test('renewal asks the page for a fresh context token first; refused even so, the access has ended', async () => {
  let asked = 0;
  const s = scripted([null], async () => `fresh${++asked}`);
  assert.equal((await s.session.renewedChatToken()).token, 'chat-for-fresh1');
  assert.deepEqual(s.calls, ['fresh1']);
  const refused = scripted([new ApiError('AccessDenied', 'revoked')], async () => 'fresh');
  await assert.rejects(refused.session.renewedChatToken(), AccessEnded);
  assert.deepEqual(refused.calls, ['fresh']);
});

test('renewal without getContextToken, or when the page fails to give one, uses the token it has', async () => {
  const none = scripted([null]);
  await none.session.renewedChatToken();
  assert.deepEqual(none.calls, ['old']);
  const failing = scripted([null], async () => {
    throw new Error('the page is offline');
  });
  await failing.session.renewedChatToken();
  assert.deepEqual(failing.calls, ['old']);
});

test('two calls refused at once ask the page once', async () => {
  let asked = 0;
  const s = scripted(
    [new ApiError('AccessDenied', 'expired'), new ApiError('AccessDenied', 'expired'), null, null],
    async () => {
      asked += 1;
      await new Promise((r) => setTimeout(r, 10));
      return 'fresh';
    },
  );
  const [a, b] = await Promise.all([s.session.chatToken(), s.session.chatToken()]);
  assert.equal(a.token, 'chat-for-fresh');
  assert.equal(b.token, 'chat-for-fresh');
  assert.equal(asked, 1);
});
