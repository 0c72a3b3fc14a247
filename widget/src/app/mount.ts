/** What the loader hands the app chunk, and what it gets back. */
import type { TransportFactory } from './transport';

export interface MountOptions {
  /** The GraphQL endpoint (AppSync's, or chatctl serve's `/graphql`). */
  apiUrl: string;
  apiKey: string | null;
  /** One room only; else every room of the token, in a list. */
  context: string | null;
  /** The room shown first, in the list of all. */
  room: string | null;
  /** `twilio` (the Conversations SDK, cloud) or `local` (chatctl serve's browser API). */
  transport: 'twilio' | 'local';
  lang: string;
  /** Shown as a floating panel with a close button. */
  floating: boolean;
  /** The context token the page gave, read when needed (the page may replace it). */
  contextToken(): string | null;
  getContextToken(): (() => Promise<string>) | null;
  /** Hides the panel (the launcher shows again). */
  close(): void;
  loadChunk<T>(name: string): Promise<T>;
}

export interface Mounted {
  /** The page set a new context token: use it from the next renewal on. */
  tokenChanged(): void;
  /** The element left the page: stop everything. */
  unmount(): void;
}

export type Mount = (root: ShadowRoot, options: MountOptions) => Mounted;
export type { TransportFactory };
