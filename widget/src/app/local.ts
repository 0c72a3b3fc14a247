/**
 * The local transport: `chatctl serve`'s browser API (`/local/v1/`, README "Local chat") on the
 * API's own origin, with the access token as `Authorization: Bearer`. Events come as
 * Server-Sent Events read through `fetch` (an `EventSource` cannot send the header); a dropped
 * stream reconnects with backoff and asks the widget to resync, so nothing is lost, and the
 * widget keeps messages by index, so nothing shows twice.
 */
import { backoffMs } from './session';
import type {
  ChatMessage,
  HistoryPage,
  RoomInfo,
  Transport,
  TransportListener,
} from './transport';

interface WireMessage {
  index: number;
  author: string | null;
  body: string | null;
  dateCreated: string;
}

interface WireConversation {
  context: string | null;
  title: string | null;
  lastMessage: WireMessage | null;
  lastReadIndex: number | null;
  unread: number;
}

function message(m: WireMessage): ChatMessage {
  return { index: m.index, author: m.author, body: m.body ?? '', at: new Date(m.dateCreated) };
}

/** Thrown for an answer other than 2xx: its HTTP status. */
export class LocalError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

export class LocalTransport implements Transport {
  private token = '';
  private stream: AbortController | null = null;
  private closed = false;
  private attempt = 0;
  private everReady = false;

  constructor(
    /** `http://host:port/local/v1` */
    private readonly base: string,
    private readonly listener: TransportListener,
  ) {}

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = {
      method,
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      credentials: 'omit',
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(`${this.base}/${path}`, init);
    if (response.status === 401) this.listener.tokenExpired();
    if (!response.ok) throw new LocalError(response.status);
    return response.status === 204 ? (undefined as T) : ((await response.json()) as T);
  }

  async connect(token: string): Promise<void> {
    this.token = token;
    this.listen();
  }

  async updateToken(token: string): Promise<void> {
    this.token = token;
    // A stream refused for its old token is waiting to reconnect: try now.
    if (!this.stream) this.listen();
  }

  async rooms(): Promise<RoomInfo[]> {
    const { conversations } = await this.request<{ conversations: WireConversation[] }>('GET', 'conversations');
    return conversations
      .filter((c): c is WireConversation & { context: string } => typeof c.context === 'string')
      .map((c) => ({
        context: c.context,
        title: c.title ?? c.context,
        lastReadIndex: c.lastReadIndex,
        unread: c.unread,
        lastIndex: c.lastMessage?.index ?? null,
      }));
  }

  async history(context: string, before: number | undefined, limit: number): Promise<HistoryPage> {
    const query = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) query.set('before', String(before));
    const page = await this.request<{ messages: WireMessage[]; hasMore: boolean }>(
      'GET',
      `conversations/${encodeURIComponent(context)}/messages?${query}`,
    );
    return { messages: page.messages.map(message), hasMore: page.hasMore };
  }

  async send(context: string, body: string): Promise<number | undefined> {
    const r = await this.request<{ message: WireMessage }>(
      'POST',
      `conversations/${encodeURIComponent(context)}/messages`,
      { body },
    );
    this.listener.message(context, message(r.message));
    return r.message.index;
  }

  async read(context: string, index: number): Promise<void> {
    await this.request('POST', `conversations/${encodeURIComponent(context)}/read`, { index });
  }

  typing(context: string): void {
    this.request('POST', `conversations/${encodeURIComponent(context)}/typing`).catch(() => {});
  }

  close(): void {
    this.closed = true;
    this.stream?.abort();
    this.stream = null;
  }

  /** Opens the event stream, and opens it again when it drops, until closed. */
  private listen(): void {
    if (this.closed || this.stream) return;
    const abort = new AbortController();
    this.stream = abort;
    this.listener.state('connecting');
    this.read_stream(abort)
      .catch(() => 'dropped' as const)
      .then((how) => {
        if (this.stream === abort) this.stream = null;
        if (this.closed) return;
        this.listener.state('offline');
        // Refused for its token: wait for the renewed one (updateToken reopens).
        if (how === 'unauthorized') return;
        setTimeout(() => this.listen(), backoffMs(this.attempt++));
      });
  }

  private async read_stream(abort: AbortController): Promise<'dropped' | 'unauthorized'> {
    const response = await fetch(`${this.base}/events`, {
      headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
      credentials: 'omit',
      signal: abort.signal,
    });
    if (response.status === 401) {
      this.listener.tokenExpired();
      return 'unauthorized';
    }
    if (!response.ok || !response.body) return 'dropped';
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'dropped';
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        this.dispatch(block);
      }
    }
  }

  /** One Server-Sent Event: `event:` and `data:` lines. */
  private dispatch(block: string): void {
    let name = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length === 0) return;
    let event: { context?: string; message?: WireMessage; identity?: string; index?: number };
    try {
      event = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    const context = event.context;
    switch (name) {
      case 'ready':
        this.attempt = 0;
        this.listener.state('connected');
        // Reconnected: what happened while the stream was down is fetched again.
        if (this.everReady) this.listener.resync();
        this.everReady = true;
        break;
      case 'resync':
        this.listener.resync();
        break;
      case 'message':
        if (context && event.message) this.listener.message(context, message(event.message));
        break;
      case 'typing':
        if (context && event.identity) this.listener.typing(context, event.identity);
        break;
      case 'messageRemoved':
        if (context && typeof event.index === 'number') this.listener.messageRemoved(context, event.index);
        break;
      case 'membershipEnded':
        if (context) this.listener.roomEnded(context);
        break;
    }
  }
}
