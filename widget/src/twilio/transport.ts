/**
 * The cloud transport: Twilio's Conversations JavaScript SDK. It is written against the part of
 * the SDK's public interface it uses (`SdkClient` and friends, as Twilio documents them), so
 * the tests drive it with a test double and the live test with the real client.
 */
import type {
  ChatMessage,
  HistoryPage,
  RoomInfo,
  Transport,
  TransportListener,
} from '../app/transport';

export interface SdkPaginator<T> {
  items: T[];
  hasPrevPage: boolean;
  hasNextPage: boolean;
  prevPage(): Promise<SdkPaginator<T>>;
  nextPage(): Promise<SdkPaginator<T>>;
}

export interface SdkMessage {
  readonly index: number;
  readonly author: string | null;
  readonly body: string | null;
  readonly dateCreated: Date | null;
  readonly conversation: SdkConversation;
}

export interface SdkParticipant {
  readonly identity: string | null;
  readonly conversation: SdkConversation;
}

export interface SdkConversation {
  readonly sid: string;
  readonly uniqueName: string | null;
  readonly friendlyName: string | null;
  readonly lastReadMessageIndex: number | null;
  readonly lastMessage?: { index?: number } | undefined;
  getMessages(pageSize?: number, anchor?: number, direction?: 'backwards' | 'forward'): Promise<SdkPaginator<SdkMessage>>;
  sendMessage(body: string): Promise<number>;
  advanceLastReadMessageIndex(index: number): Promise<number>;
  typing(): Promise<void>;
}

export type SdkClientEvent =
  | 'connectionStateChanged'
  | 'initialized'
  | 'initFailed'
  | 'messageAdded'
  | 'messageRemoved'
  | 'typingStarted'
  | 'conversationLeft'
  | 'conversationRemoved'
  | 'tokenAboutToExpire'
  | 'tokenExpired';

export interface SdkClient {
  on(event: SdkClientEvent, listener: (...args: any[]) => void): unknown;
  updateToken(token: string): Promise<unknown>;
  getSubscribedConversations(): Promise<SdkPaginator<SdkConversation>>;
  getConversationByUniqueName(uniqueName: string): Promise<SdkConversation>;
  shutdown(): Promise<void>;
}

/** `new Client(token)` of the SDK, or a test double. */
export type MakeClient = (token: string) => SdkClient;

function message(m: SdkMessage): ChatMessage {
  return { index: m.index, author: m.author, body: m.body ?? '', at: m.dateCreated ?? new Date() };
}

/** A room's unread count from what the conversation carries (no request per room). */
export function unreadOf(c: SdkConversation): number {
  const last = c.lastMessage?.index;
  if (last === undefined) return 0;
  return c.lastReadMessageIndex === null ? last + 1 : Math.max(0, last - c.lastReadMessageIndex);
}

export class TwilioTransport implements Transport {
  private client: SdkClient | null = null;
  private ready: Promise<void> | null = null;
  private conversations = new Map<string, Promise<SdkConversation>>();
  private wasConnected = false;
  private closed = false;

  constructor(
    private readonly makeClient: MakeClient,
    private readonly listener: TransportListener,
  ) {}

  connect(token: string): Promise<void> {
    const client = this.makeClient(token);
    this.client = client;
    const l = this.listener;
    client.on('connectionStateChanged', (state: string) => {
      if (this.closed) return;
      if (state === 'connected') {
        l.state('connected');
        // Back after a drop: the widget fetches what it may have missed.
        if (this.wasConnected) l.resync();
        this.wasConnected = true;
      } else if (state === 'connecting') {
        l.state('connecting');
      } else if (state === 'denied') {
        l.tokenExpired();
      } else {
        l.state('offline');
      }
    });
    const context = (c: SdkConversation) => c.uniqueName;
    client.on('messageAdded', (m: SdkMessage) => {
      const ctx = context(m.conversation);
      if (ctx) l.message(ctx, message(m));
    });
    client.on('messageRemoved', (m: SdkMessage) => {
      const ctx = context(m.conversation);
      if (ctx) l.messageRemoved(ctx, m.index);
    });
    client.on('typingStarted', (p: SdkParticipant) => {
      const ctx = context(p.conversation);
      if (ctx && p.identity) l.typing(ctx, p.identity);
    });
    const ended = (c: SdkConversation) => {
      const ctx = context(c);
      if (!ctx) return;
      this.conversations.delete(ctx);
      l.roomEnded(ctx);
    };
    client.on('conversationLeft', ended);
    client.on('conversationRemoved', ended);
    client.on('tokenAboutToExpire', () => l.tokenAboutToExpire());
    client.on('tokenExpired', () => l.tokenExpired());
    this.ready = new Promise<void>((resolve, reject) => {
      client.on('initialized', () => resolve());
      client.on('initFailed', (e?: { error?: { message?: string } }) =>
        reject(new Error(e?.error?.message ?? 'The Conversations client did not start.')),
      );
    });
    return this.ready;
  }

  async updateToken(token: string): Promise<void> {
    await this.client?.updateToken(token);
  }

  private async sdk(): Promise<SdkClient> {
    if (!this.client || !this.ready) throw new Error('not connected');
    await this.ready;
    return this.client;
  }

  /** The conversation of `context`, fetched once. */
  private conversation(context: string): Promise<SdkConversation> {
    let found = this.conversations.get(context);
    if (!found) {
      found = this.sdk().then((c) => c.getConversationByUniqueName(context));
      found.catch(() => this.conversations.delete(context));
      this.conversations.set(context, found);
    }
    return found;
  }

  async rooms(): Promise<RoomInfo[]> {
    const client = await this.sdk();
    const rooms: RoomInfo[] = [];
    let page: SdkPaginator<SdkConversation> | null = await client.getSubscribedConversations();
    while (page) {
      for (const c of page.items) {
        if (!c.uniqueName) continue;
        this.conversations.set(c.uniqueName, Promise.resolve(c));
        rooms.push({
          context: c.uniqueName,
          title: c.friendlyName ?? c.uniqueName,
          lastReadIndex: c.lastReadMessageIndex,
          unread: unreadOf(c),
          lastIndex: c.lastMessage?.index ?? null,
        });
      }
      page = page.hasNextPage ? await page.nextPage() : null;
    }
    return rooms;
  }

  async history(context: string, before: number | undefined, limit: number): Promise<HistoryPage> {
    const c = await this.conversation(context);
    if (before !== undefined && before <= 0) return { messages: [], hasMore: false };
    const page = await c.getMessages(limit, before === undefined ? undefined : before - 1, 'backwards');
    return { messages: page.items.map(message), hasMore: page.hasPrevPage };
  }

  async send(context: string, body: string): Promise<number | undefined> {
    return (await this.conversation(context)).sendMessage(body);
  }

  async read(context: string, index: number): Promise<void> {
    await (await this.conversation(context)).advanceLastReadMessageIndex(index);
  }

  typing(context: string): void {
    this.conversation(context)
      .then((c) => c.typing())
      .catch(() => {});
  }

  close(): void {
    this.closed = true;
    this.client?.shutdown().catch(() => {});
    this.client = null;
  }
}
