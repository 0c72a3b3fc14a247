// The Twilio transport against a test double of the Conversations SDK's public interface: the
// client's events and methods as Twilio documents them (Client, Conversation, Message,
// Participant, Paginator of @twilio/conversations 3.x).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChatMessage, ConnectionState, TransportListener } from '../src/app/transport';
import {
  TwilioTransport,
  unreadOf,
  type SdkClient,
  type SdkClientEvent,
  type SdkConversation,
  type SdkMessage,
  type SdkPaginator,
} from '../src/twilio/transport';

function paginate<T>(pages: T[][], at = 0): SdkPaginator<T> {
  return {
    items: pages[at] ?? [],
    hasPrevPage: false,
    hasNextPage: at + 1 < pages.length,
    prevPage: () => Promise.reject(new Error('no previous page')),
    nextPage: async () => paginate(pages, at + 1),
  };
}

class FakeConversation implements SdkConversation {
  sent: string[] = [];
  reads: number[] = [];
  typings = 0;
  messages: SdkMessage[] = [];
  getMessagesCalls: unknown[][] = [];
  constructor(
    readonly sid: string,
    readonly uniqueName: string | null,
    readonly friendlyName: string | null,
    public lastReadMessageIndex: number | null,
    public lastMessage: { index?: number } | undefined,
  ) {}
  add(index: number, author: string, body: string): SdkMessage {
    const m = { index, author, body, dateCreated: new Date(1_700_000_000_000 + index * 1000), conversation: this };
    this.messages.push(m);
    this.lastMessage = { index };
    return m;
  }
  async getMessages(pageSize = 30, anchor?: number, direction: 'backwards' | 'forward' = 'backwards') {
    this.getMessagesCalls.push([pageSize, anchor, direction]);
    const upTo = this.messages.filter((m) => anchor === undefined || m.index <= anchor);
    const items = upTo.slice(Math.max(0, upTo.length - pageSize));
    return { ...paginate([items]), hasPrevPage: upTo.length > items.length };
  }
  async sendMessage(body: string) {
    this.sent.push(body);
    return this.add((this.lastMessage?.index ?? -1) + 1, 'me', body).index;
  }
  async advanceLastReadMessageIndex(index: number) {
    this.reads.push(index);
    this.lastReadMessageIndex = index;
    return 0;
  }
  async typing() {
    this.typings += 1;
  }
}

class FakeClient implements SdkClient {
  handlers = new Map<SdkClientEvent, ((...a: any[]) => void)[]>();
  tokens: string[] = [];
  shutdowns = 0;
  byName = new Map<string, FakeConversation>();
  lookups = 0;
  constructor(
    token: string,
    readonly subscribed: FakeConversation[][],
  ) {
    this.tokens.push(token);
    for (const page of subscribed) for (const c of page) if (c.uniqueName) this.byName.set(c.uniqueName, c);
  }
  on(event: SdkClientEvent, listener: (...a: any[]) => void) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), listener]);
    return this;
  }
  emit(event: SdkClientEvent, ...args: unknown[]) {
    for (const h of this.handlers.get(event) ?? []) h(...args);
  }
  async updateToken(token: string) {
    this.tokens.push(token);
    return this;
  }
  async getSubscribedConversations() {
    return paginate(this.subscribed);
  }
  async getConversationByUniqueName(name: string) {
    this.lookups += 1;
    const c = this.byName.get(name);
    if (!c) throw new Error('Forbidden');
    return c;
  }
  async shutdown() {
    this.shutdowns += 1;
  }
}

function recorder() {
  const seen: string[] = [];
  const messages: [string, ChatMessage][] = [];
  const listener: TransportListener = {
    message: (c, m) => messages.push([c, m]),
    typing: (c, who) => seen.push(`typing ${c} ${who}`),
    messageRemoved: (c, index) => seen.push(`removed ${c} ${index}`),
    roomEnded: (c) => seen.push(`ended ${c}`),
    state: (s: ConnectionState) => seen.push(`state ${s}`),
    resync: () => seen.push('resync'),
    tokenAboutToExpire: () => seen.push('aboutToExpire'),
    tokenExpired: () => seen.push('expired'),
  };
  return { seen, messages, listener };
}

async function connected() {
  const general = new FakeConversation('CH1', 'general', 'General', 1, { index: 4 });
  const random = new FakeConversation('CH2', 'random', null, null, { index: 2 });
  const empty = new FakeConversation('CH3', 'quiet', 'Quiet', null, undefined);
  const stray = new FakeConversation('CH4', null, 'no unique name', null, undefined);
  let client!: FakeClient;
  const r = recorder();
  const transport = new TwilioTransport((token) => (client = new FakeClient(token, [[general, random], [empty, stray]])), r.listener);
  const started = transport.connect('access-1');
  client.emit('initialized');
  await started;
  return { transport, client, general, random, ...r };
}

test('rooms: every page of subscribed conversations, titles, and unread counts without a request per room', async () => {
  const { transport, client } = await connected();
  const rooms = await transport.rooms();
  assert.deepEqual(
    rooms.map((r) => [r.context, r.title, r.unread, r.lastReadIndex, r.lastIndex]),
    [
      ['general', 'General', 3, 1, 4],
      ['random', 'random', 3, null, 2],
      ['quiet', 'Quiet', 0, null, null],
    ],
  );
  // The rooms' conversations are kept: using one asks Twilio for nothing more.
  await transport.send('general', 'hi');
  assert.equal(client.lookups, 0);
});

test('history pages backwards from the index before the oldest shown', async () => {
  const { transport, general } = await connected();
  for (let i = 0; i < 5; i++) general.add(i, i % 2 ? 'sam' : 'alex', `m${i}`);
  const newest = await transport.history('general', undefined, 2);
  assert.deepEqual(newest.messages.map((m) => m.index), [3, 4]);
  assert.equal(newest.hasMore, true);
  const older = await transport.history('general', 3, 2);
  assert.deepEqual(older.messages.map((m) => m.index), [1, 2]);
  assert.deepEqual(general.getMessagesCalls[1], [2, 2, 'backwards']);
  assert.deepEqual((await transport.history('general', 0, 2)).messages, []);
});

test('send, read and typing go to the conversation', async () => {
  const { transport, general } = await connected();
  assert.equal(await transport.send('general', 'hello'), 5);
  assert.deepEqual(general.sent, ['hello']);
  await transport.read('general', 5);
  assert.deepEqual(general.reads, [5]);
  transport.typing('general');
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(general.typings, 1);
  await assert.rejects(transport.send('elsewhere', 'x'));
});

test("the SDK's events reach the widget by context", async () => {
  const { client, general, seen, messages } = await connected();
  client.emit('messageAdded', general.add(5, 'sam', '<b>hi</b>'));
  assert.deepEqual(messages.map(([c, m]) => [c, m.index, m.author, m.body]), [['general', 5, 'sam', '<b>hi</b>']]);
  client.emit('typingStarted', { identity: 'sam', conversation: general });
  client.emit('messageRemoved', general.messages[0]);
  client.emit('conversationLeft', general);
  client.emit('tokenAboutToExpire');
  client.emit('tokenExpired');
  assert.deepEqual(seen, ['typing general sam', 'removed general 5', 'ended general', 'aboutToExpire', 'expired']);
});

test('a reconnect after a drop asks for a resync; a denied connection asks for a new token', async () => {
  const { client, seen } = await connected();
  for (const s of ['connecting', 'connected', 'disconnected', 'connecting', 'connected', 'denied']) client.emit('connectionStateChanged', s);
  assert.deepEqual(seen, [
    'state connecting',
    'state connected',
    'state offline',
    'state connecting',
    'state connected',
    'resync',
    'expired',
  ]);
});

test('updateToken hands the renewed token to the client; close shuts it down and silences it', async () => {
  const { transport, client, seen } = await connected();
  await transport.updateToken('access-2');
  assert.deepEqual(client.tokens, ['access-1', 'access-2']);
  transport.close();
  assert.equal(client.shutdowns, 1);
  client.emit('connectionStateChanged', 'connected');
  assert.deepEqual(seen, []);
});

test('a client that fails to start fails connect with its reason', async () => {
  let client!: FakeClient;
  const t = new TwilioTransport((token) => (client = new FakeClient(token, [])), recorder().listener);
  const started = t.connect('bad');
  client.emit('initFailed', { error: { message: 'Access forbidden for identity' } });
  await assert.rejects(started, /Access forbidden/);
});

test('unread counts from the read horizon and the last message', () => {
  const c = (read: number | null, last?: number) => new FakeConversation('CH', 'x', null, read, last === undefined ? undefined : { index: last });
  assert.equal(unreadOf(c(null)), 0);
  assert.equal(unreadOf(c(null, 0)), 1);
  assert.equal(unreadOf(c(3, 3)), 0);
  assert.equal(unreadOf(c(5, 3)), 0);
});
