/**
 * The script a platform embeds (a few KB): it defines `<context-chat>` and `DAChat(…)`, shows a
 * launcher, and loads the rest of the widget (the app chunk; in the cloud, the Twilio chunk)
 * on first open, each checked against the Subresource Integrity hash built into this script.
 *
 *   <context-chat api-url="https://…/graphql" api-key="da2-…" context="SHIPMENT-42"></context-chat>
 *   chat.getContextToken = () => fetch('/chat-token').then((r) => r.text());
 */
import { registered } from './registry';
import { stringsFor } from './strings';
import LAUNCHER_CSS from './launcher.css';
import type { Mount, Mounted, MountOptions } from './app/mount';

/** Where this script was loaded from: the chunks sit beside it, under this version's folder. */
const here = (document.currentScript as HTMLScriptElement | null)?.src ?? location.href;

const loading = new Map<string, Promise<unknown>>();

/** Loads chunk `name` once (a script tag with its integrity), resolving with what it registers. */
export function loadChunk<T>(name: string): Promise<T> {
  let found = loading.get(name);
  if (!found) {
    const chunk = __CHUNKS__[name];
    if (!chunk) return Promise.reject(new Error(`no chunk ${name}`));
    found = new Promise<unknown>((resolve, reject) => {
      const script = document.createElement('script');
      script.src = new URL(`../${__VERSION__}/${chunk.file}`, here).href;
      script.integrity = chunk.integrity;
      script.crossOrigin = 'anonymous';
      script.async = true;
      script.onerror = () => {
        loading.delete(name);
        script.remove();
        reject(new Error(`The chat could not be loaded (${chunk.file}).`));
      };
      document.head.appendChild(script);
      registered(name).then(resolve);
    });
    loading.set(name, found);
  }
  return found as Promise<T>;
}

export class ContextChatElement extends HTMLElement {
  static observedAttributes = ['open', 'token'];

  /** The page's way to hand a fresh context token when the widget needs one. */
  declare getContextToken: (() => Promise<string>) | null;
  private mounted: Mounted | null = null;
  private mounting = false;
  private readonly root: ShadowRoot;
  private readonly launcher: HTMLButtonElement;

  constructor() {
    super();
    // A page may set properties before this script defined the element: keep their values.
    const own = (name: string) => {
      const value = Object.getOwnPropertyDescriptor(this, name)?.value;
      delete (this as unknown as Record<string, unknown>)[name];
      return value;
    };
    const given = own('getContextToken');
    this.getContextToken = typeof given === 'function' ? given : null;
    const token = own('token');
    if (typeof token === 'string') this.token = token;
    // Open, so that assistive technology checks and tests can see in; styles stay inside.
    this.root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = LAUNCHER_CSS;
    this.launcher = document.createElement('button');
    this.launcher.type = 'button';
    this.launcher.className = 'launcher';
    this.launcher.addEventListener('click', () => (this.open = true));
    this.root.append(style, this.launcher);
  }

  /** The context token the page gave; also settable as the `token` attribute. */
  get token(): string | null {
    return this.getAttribute('token');
  }
  set token(value: string | null) {
    if (value == null) this.removeAttribute('token');
    else this.setAttribute('token', value);
  }

  get open(): boolean {
    return this.hasAttribute('open');
  }
  set open(value: boolean) {
    this.toggleAttribute('open', value);
  }

  connectedCallback(): void {
    this.launcher.textContent = stringsFor(this.lang || document.documentElement.lang).openChat;
    if (this.open) void this.mount();
  }

  disconnectedCallback(): void {
    this.mounted?.unmount();
    this.mounted = null;
  }

  attributeChangedCallback(name: string): void {
    if (name === 'open' && this.open && this.isConnected) void this.mount();
    if (name === 'token') this.mounted?.tokenChanged();
  }

  private options(): MountOptions {
    const attr = (n: string) => this.getAttribute(n);
    return {
      apiUrl: attr('api-url') ?? '/graphql',
      apiKey: attr('api-key'),
      context: attr('context'),
      room: attr('room'),
      transport: attr('transport') === 'local' ? 'local' : 'twilio',
      lang: this.lang || document.documentElement.lang,
      floating: this.hasAttribute('floating'),
      contextToken: () => this.token,
      getContextToken: () => this.getContextToken,
      close: () => (this.open = false),
      loadChunk,
    };
  }

  private async mount(): Promise<void> {
    if (this.mounted || this.mounting) return;
    this.mounting = true;
    try {
      const mount = await loadChunk<Mount>('app');
      if (!this.isConnected) return;
      this.mounted = mount(this.root, this.options());
    } catch (e) {
      const note = document.createElement('p');
      note.setAttribute('role', 'alert');
      note.textContent = e instanceof Error ? e.message : String(e);
      this.root.append(note);
    } finally {
      this.mounting = false;
    }
  }
}

export interface DAChatOptions {
  context?: string;
  apiKey?: string;
  apiEndpoint: string;
  token?: string;
  getContextToken?: () => Promise<string>;
  transport?: 'twilio' | 'local';
  lang?: string;
}

/** The old widget's call: a floating chat for `context`, open at once. Returns the element. */
export function DAChat(o: DAChatOptions): ContextChatElement {
  const el = document.createElement('context-chat') as ContextChatElement;
  el.setAttribute('api-url', o.apiEndpoint);
  if (o.apiKey) el.setAttribute('api-key', o.apiKey);
  if (o.context) el.setAttribute('context', o.context);
  if (o.token) el.token = o.token;
  if (o.transport) el.setAttribute('transport', o.transport);
  if (o.lang) el.lang = o.lang;
  el.getContextToken = o.getContextToken ?? null;
  el.setAttribute('floating', '');
  el.setAttribute('open', '');
  document.body.appendChild(el);
  return el;
}

if (!customElements.get('context-chat')) customElements.define('context-chat', ContextChatElement);
(globalThis as unknown as { DAChat?: typeof DAChat }).DAChat ??= DAChat;
