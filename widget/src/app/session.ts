/**
 * The widget's token life. The host page gives a context token (or only `getContextToken`);
 * the session trades it for a Twilio access token with `issueChatToken` and renews that before
 * it expires. A context token the API refuses (expired, issued before a revocation) is asked
 * for afresh once through `getContextToken()`; refused again, the user's access has ended.
 * `TooManyRequests` waits the seconds the API named; no answer at all retries with backoff.
 * Tokens live in memory only and are never logged.
 */
import { ApiError, type ChatTokenReceipt } from './api';

/** The API refused the user even with a fresh context token: the widget stops. */
export class AccessEnded extends Error {
  constructor(readonly why: string) {
    super('access ended');
    this.name = 'AccessEnded';
  }
}

export interface SessionOptions {
  issueChatToken(deviceId: string, token: string): Promise<ChatTokenReceipt>;
  deviceId: string;
  /** The context token the page gave, if any. */
  contextToken: string | null;
  /** The page's way to hand a fresh context token. */
  getContextToken?: (() => Promise<string>) | null;
  /** Told before each wait for `TooManyRequests`, with the seconds. */
  onWaiting?: (secs: number) => void;
  /** Told before each retry after no answer. */
  onOffline?: () => void;
  /** Waits (tests pass their own clock). */
  sleep?: (ms: number) => Promise<void>;
}

/** Waits for no answer: 1 s, 2 s, 4 s … up to 30 s, with jitter so that a fleet spreads out. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
  return Math.round(base * (0.75 + random() * 0.5));
}

const sleepReal = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Session {
  private contextToken: string | null;
  private closed = false;
  private asking: Promise<string> | null = null;

  constructor(private readonly o: SessionOptions) {
    this.contextToken = o.contextToken;
  }

  /** The page handed a new context token: the next call uses it. */
  useContextToken(token: string | null): void {
    if (token) this.contextToken = token;
  }

  /** No more retries: the widget was removed. */
  close(): void {
    this.closed = true;
  }

  /** The page's fresh token; calls at the same time share one ask. */
  private fresh(): Promise<string> {
    this.asking ??= (async () => {
      try {
        if (!this.o.getContextToken) throw new AccessEnded('no getContextToken');
        const token = await this.o.getContextToken();
        if (typeof token !== 'string' || token === '') throw new AccessEnded('getContextToken gave no token');
        this.contextToken = token;
        return token;
      } finally {
        this.asking = null;
      }
    })();
    return this.asking;
  }

  /**
   * Runs `call` with the context token: refused with `AccessDenied`, asks the page for a fresh
   * one once and runs it again; refused again, `AccessEnded`. Waits out `TooManyRequests` and
   * retries after no answer; any other refusal is the caller's to show.
   */
  async withContextToken<T>(call: (token: string) => Promise<T>, askFirst = false): Promise<T> {
    const sleep = this.o.sleep ?? sleepReal;
    let asked = false;
    let token: string | null = null;
    if (askFirst) {
      // The page's fresh token, when it gives one; else (or if asking fails) the one we have.
      token = await this.fresh().then(
        (fresh) => ((asked = true), fresh),
        () => null,
      );
    }
    token ??= this.contextToken ?? ((asked = true), await this.fresh());
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new AccessEnded('closed');
      try {
        return await call(token);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (e.type === 'AccessDenied') {
          if (asked) throw new AccessEnded(e.message);
          asked = true;
          token = await this.fresh();
        } else if (e.type === 'TooManyRequests') {
          const secs = e.retryAfterSecs ?? 5;
          this.o.onWaiting?.(secs);
          await sleep(secs * 1000);
        } else if (e.type === 'Network' || e.type === 'InternalError') {
          this.o.onOffline?.();
          await sleep(backoffMs(attempt));
        } else {
          throw e;
        }
      }
    }
  }

  /** A Twilio access token for the context token's identity and contexts. */
  chatToken(): Promise<ChatTokenReceipt> {
    return this.withContextToken((token) => this.o.issueChatToken(this.o.deviceId, token));
  }

  /**
   * A renewed access token: context tokens are short, so the page is asked for a fresh one
   * first (`getContextToken()` → `issueChatToken`); a page without one renews with the token it gave.
   */
  renewedChatToken(): Promise<ChatTokenReceipt> {
    return this.withContextToken((token) => this.o.issueChatToken(this.o.deviceId, token), true);
  }
}
