/**
 * What the widget needs of a chat service, whichever carries it: Twilio's Conversations SDK in
 * the cloud (`../twilio/`), or the local browser API of `chatctl serve` (`local.ts`). The widget
 * never joins or leaves a room itself: the API made the user a participant of exactly the
 * token's contexts before it handed out the access token.
 */

/** One message, as the widget shows it. `index` orders a room's messages and is never reused. */
export interface ChatMessage {
  index: number;
  author: string | null;
  body: string;
  /** When it was posted. */
  at: Date;
}

/** A room the user is in: a context's conversation. */
export interface RoomInfo {
  context: string;
  /** Its friendly name, else its context. */
  title: string;
  /** The user's read horizon: the last message index read, or null for none. */
  lastReadIndex: number | null;
  unread: number;
  /** The newest message's index, or null for an empty room. */
  lastIndex: number | null;
}

/** A page of a room's history, oldest first. */
export interface HistoryPage {
  messages: ChatMessage[];
  /** Older messages exist before the first of this page. */
  hasMore: boolean;
}

export type ConnectionState = 'connecting' | 'connected' | 'offline';

/** What a transport tells the widget. */
export interface TransportListener {
  message(context: string, message: ChatMessage): void;
  typing(context: string, identity: string): void;
  /** A message was deleted (by its author, or a moderator). */
  messageRemoved(context: string, index: number): void;
  /** The user is no longer a participant (a sync or a revocation removed them). */
  roomEnded(context: string): void;
  state(state: ConnectionState): void;
  /** Events may have been missed while offline: the widget fetches what is newer than it has. */
  resync(): void;
  /** The access token needs renewing soon (Twilio warns about a minute ahead). */
  tokenAboutToExpire(): void;
  /** The access token is no longer accepted: renew it. */
  tokenExpired(): void;
}

export interface Transport {
  /** Connects with an access token; resolves once rooms can be listed. */
  connect(token: string): Promise<void>;
  /** Goes on with a renewed access token, without losing the connection's state. */
  updateToken(token: string): Promise<void>;
  rooms(): Promise<RoomInfo[]>;
  /** Up to `limit` messages before `before` (the newest when absent). */
  history(context: string, before: number | undefined, limit: number): Promise<HistoryPage>;
  /** Posts a message; the index it got, when the service says at once. */
  send(context: string, body: string): Promise<number | undefined>;
  /** Moves the user's read horizon to `index`. */
  read(context: string, index: number): Promise<void>;
  /** Tells the others the user is typing. */
  typing(context: string): void;
  /** Stops for good: no more events, no reconnecting. */
  close(): void;
}

/** Makes a transport that tells `listener`. */
export type TransportFactory = (listener: TransportListener) => Transport;

/** The identity an access token names (its `grants.identity`), read without verifying: only for display. */
export function identityOf(accessToken: string): string | null {
  try {
    const payload = accessToken.split('.')[1] ?? '';
    const binary = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    const identity = JSON.parse(json)?.grants?.identity;
    return typeof identity === 'string' ? identity : null;
  } catch {
    return null;
  }
}
