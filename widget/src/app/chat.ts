/**
 * The chat: rooms, history, live messages, typing, read horizons, sending, notifications, and
 * the token's life, over whichever transport the element chose. Everything a message carries is
 * put in the DOM as text (`textContent`, text nodes); links are made by `text.ts`. Nothing is
 * stored beyond memory and nothing is logged.
 */
import { stringsFor, type Strings } from '../strings';
import { Api, ApiError } from './api';
import { LocalError, LocalTransport } from './local';
import type { Mounted, MountOptions } from './mount';
import { AccessEnded, Session } from './session';
import CSS from './chat.css';
import { linkified } from './text';
import {
  identityOf,
  type ChatMessage,
  type ConnectionState,
  type RoomInfo,
  type Transport,
  type TransportFactory,
  type TransportListener,
} from './transport';

/** Messages fetched at a time. */
const PAGE = 30;
/** This close to the bottom, the newest message counts as seen. */
const SEEN_SLACK_PX = 48;
/** How long "… is typing" shows after the last sign of it. */
const TYPING_SHOWN_MS = 5000;
/** At most one typing signal this often. */
const TYPING_SENT_MS = 3000;
/** Renew the access token this long before it expires. */
const RENEW_AHEAD_MS = 60_000;

interface Room {
  context: string;
  title: string;
  messages: Map<number, ChatMessage>;
  loaded: boolean;
  hasMore: boolean;
  lastRead: number | null;
  unread: number;
  ended: boolean;
  /** The token makes the user a reader here: no message box. */
  readOnly: boolean;
  /** Who is typing, until when (ms). */
  typing: Map<string, number>;
}

type Child = Node | string;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function newest(room: Room): number | null {
  let max: number | null = null;
  for (const i of room.messages.keys()) if (max === null || i > max) max = i;
  return max;
}

function oldest(room: Room): number | null {
  let min: number | null = null;
  for (const i of room.messages.keys()) if (min === null || i < min) min = i;
  return min;
}

/** The local browser API beside the GraphQL endpoint: `…/graphql` → `…/local/v1`. */
function localBase(apiUrl: string): string {
  return new URL('/local/v1', new URL(apiUrl, location.href)).href;
}

export class Chat implements Mounted {
  private readonly t: Strings;
  private readonly api: Api;
  private readonly session: Session;
  private transport: Transport | null = null;
  private readonly rooms = new Map<string, Room>();
  private current: Room | null = null;
  private me: string | null = null;
  /** Each context's role in the context token (verifyToken). */
  private roles = new Map<string, string>();
  private stopped = false;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private renewing: Promise<void> | null = null;
  private lastTypingSent = 0;
  private readonly readTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly nodes = new Map<number, HTMLElement>();
  private readonly navItems = new Map<string, { button: HTMLButtonElement; badge: HTMLElement; said: HTMLElement }>();
  private readonly onVisibility = () => this.markReadIfSeen();

  // The DOM, built once.
  private readonly heading: HTMLHeadingElement;
  private readonly status: HTMLParagraphElement;
  private readonly nav: HTMLElement;
  private readonly roomList: HTMLUListElement;
  private readonly notice: HTMLParagraphElement;
  private readonly log: HTMLDivElement;
  private readonly earlier: HTMLButtonElement;
  private readonly typingLine: HTMLParagraphElement;
  private readonly textarea: HTMLTextAreaElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly notify: HTMLDetailsElement;
  private readonly frame: HTMLElement;

  constructor(
    root: ShadowRoot,
    private readonly o: MountOptions,
  ) {
    const t = (this.t = stringsFor(o.lang));
    this.api = new Api(o.apiUrl, o.apiKey);
    this.session = new Session({
      issueChatToken: (deviceId, token) => this.api.issueChatToken(deviceId, token),
      deviceId: crypto.randomUUID(),
      contextToken: o.contextToken(),
      // Read when needed: the page may set it after the widget started.
      getContextToken: () => {
        const given = o.getContextToken();
        if (!given) throw new AccessEnded('no getContextToken');
        return given();
      },
      onWaiting: (secs) => this.setStatus(t.waiting(secs)),
      onOffline: () => this.setStatus(t.offline),
    });

    this.heading = el('h2', {}, t.chat);
    this.status = el('p', { class: 'status', role: 'status' });
    const header = el('header', {}, this.heading, this.status);
    if (o.floating) {
      const close = el('button', { type: 'button' }, t.close);
      close.addEventListener('click', () => o.close());
      header.append(close);
    }
    this.roomList = el('ul');
    this.nav = el('nav', { 'aria-label': t.rooms, hidden: '' }, this.roomList);
    this.notice = el('p', { class: 'notice', role: 'alert' });
    this.earlier = el('button', { type: 'button', class: 'earlier', hidden: '' }, t.earlier);
    this.earlier.addEventListener('click', () => void this.loadEarlier());
    this.log = el('div', { class: 'log', role: 'log', tabindex: '0', 'aria-label': t.chat }, el('p', { class: 'empty' }, t.loading));
    this.log.addEventListener('scroll', () => this.markReadIfSeen());
    this.typingLine = el('p', { class: 'typing', 'aria-live': 'polite' });
    this.textarea = el('textarea', { 'aria-label': t.message, name: 'message', rows: '2', maxlength: '1600', disabled: '' });
    this.sendButton = el('button', { type: 'submit', class: 'primary', disabled: '' }, t.send);
    const compose = el('form', { class: 'compose' }, this.textarea, this.sendButton);
    compose.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    this.textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        compose.requestSubmit();
      }
    });
    this.textarea.addEventListener('input', () => this.typed());
    this.notify = this.notifications();
    const room = el('section', { class: 'room' }, this.notice, this.log, this.typingLine, compose, this.notify);
    this.frame = el('div', { class: 'chat', part: 'chat' }, header, el('div', { class: 'main' }, this.nav, room));

    if ('adoptedStyleSheets' in root && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    } else {
      root.append(el('style', {}, CSS));
    }
    root.append(this.frame);
    document.addEventListener('visibilitychange', this.onVisibility);
    void this.start();
  }

  // ---- life ----

  private async start(): Promise<void> {
    this.setStatus(this.t.connecting);
    try {
      const [receipt, roles] = await Promise.all([
        this.session.chatToken(),
        // A server without roles (an older deployment) answers without them: all members.
        this.session.withContextToken((token) => this.api.roles(token)).catch(() => new Map<string, string>()),
      ]);
      if (this.stopped) return;
      this.roles = roles;
      this.me = identityOf(receipt.token);
      const make: TransportFactory =
        this.o.transport === 'local'
          ? (l) => new LocalTransport(localBase(this.o.apiUrl), l)
          : await this.o.loadChunk<TransportFactory>('twilio');
      if (this.stopped) return;
      this.transport = make(this.listener());
      await this.transport.connect(receipt.token);
      this.scheduleRenewal(receipt.expiresAt);
      await this.loadRooms();
    } catch (e) {
      this.failed(e);
    }
  }

  tokenChanged(): void {
    this.session.useContextToken(this.o.contextToken());
  }

  unmount(): void {
    this.stop();
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.frame.remove();
  }

  private stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    for (const timer of this.readTimers.values()) clearTimeout(timer);
    this.transport?.close();
    this.session.close();
  }

  /** The user's access has ended (revoked, or no room left): say so and stop. */
  private ended(): void {
    this.stop();
    this.setStatus('');
    this.say(this.t.accessEnded);
    this.setComposing(false);
    for (const control of this.notify.querySelectorAll('input, button')) (control as HTMLInputElement).disabled = true;
  }

  private failed(e: unknown): void {
    if (e instanceof AccessEnded) return this.ended();
    if (this.stopped) return;
    this.setStatus('');
    this.say(e instanceof ApiError && e.type === 'BadRequest' ? e.message : this.t.failed);
  }

  private scheduleRenewal(expiresAt: number): void {
    clearTimeout(this.renewTimer);
    const ms = Math.max(5000, expiresAt * 1000 - Date.now() - RENEW_AHEAD_MS);
    this.renewTimer = setTimeout(() => void this.renew(), ms);
  }

  /** A fresh access token (and, when the API asks, a fresh context token from the page). */
  private renew(): Promise<void> {
    this.renewing ??= (async () => {
      try {
        const receipt = await this.session.renewedChatToken();
        if (this.stopped || !this.transport) return;
        await this.transport.updateToken(receipt.token);
        this.scheduleRenewal(receipt.expiresAt);
      } catch (e) {
        this.failed(e);
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  private listener(): TransportListener {
    return {
      message: (context, m) => this.received(context, m),
      typing: (context, who) => this.someoneTyping(context, who),
      messageRemoved: (context, index) => this.removed(context, index),
      roomEnded: (context) => this.roomEnded(context),
      state: (s) => this.connection(s),
      resync: () => void this.resync().catch((e) => this.failed(e)),
      tokenAboutToExpire: () => void this.renew(),
      tokenExpired: () => void this.renew(),
    };
  }

  private connection(state: ConnectionState): void {
    if (this.stopped) return;
    const t = this.t;
    this.setStatus(state === 'connected' ? t.connected : state === 'connecting' ? t.connecting : t.offline);
  }

  // ---- rooms ----

  private async loadRooms(): Promise<void> {
    if (!this.transport) return;
    const infos = await this.transport.rooms();
    if (this.stopped) return;
    const wanted = this.o.context ? infos.filter((r) => r.context === this.o.context) : infos;
    const listed = new Set(wanted.map((r) => r.context));
    for (const info of wanted) this.upsert(info);
    // A room we had that the service no longer lists us in has ended (while we were away).
    for (const room of this.rooms.values()) if (!listed.has(room.context) && !room.ended) this.roomEnded(room.context);
    if (this.rooms.size === 0) {
      if (this.o.context) {
        this.say(this.t.notAMember);
        this.log.replaceChildren();
        this.setStatus('');
      } else {
        this.ended();
      }
      return;
    }
    this.renderNav();
    if (!this.current) {
      const wanted = this.o.context ?? this.o.room;
      const first = (wanted && this.rooms.get(wanted)) || this.rooms.values().next().value;
      if (first) await this.select(first);
    } else {
      this.markReadIfSeen();
    }
  }

  private upsert(info: RoomInfo): void {
    const room = this.rooms.get(info.context);
    if (room) {
      room.title = info.title;
      room.unread = info.unread;
      room.lastRead = info.lastReadIndex;
      return;
    }
    this.rooms.set(info.context, {
      context: info.context,
      title: info.title,
      messages: new Map(),
      loaded: false,
      hasMore: false,
      lastRead: info.lastReadIndex,
      unread: info.unread,
      ended: false,
      readOnly: this.roles.get(info.context) === 'reader',
      typing: new Map(),
    });
  }

  private renderNav(): void {
    this.nav.hidden = Boolean(this.o.context) || this.rooms.size < 2;
    for (const room of this.rooms.values()) {
      let item = this.navItems.get(room.context);
      if (!item) {
        const badge = el('span', { class: 'badge', 'aria-hidden': 'true' });
        const said = el('span', { class: 'vh' });
        const button = el('button', { type: 'button' }, el('span', {}, room.title), badge, said);
        button.addEventListener('click', () => void this.select(room));
        this.roomList.append(el('li', {}, button));
        item = { button, badge, said };
        this.navItems.set(room.context, item);
      }
      item.button.setAttribute('aria-current', String(room === this.current));
      item.badge.textContent = room.unread > 0 && !room.ended ? String(room.unread) : '';
      item.said.textContent = room.unread > 0 && !room.ended ? this.t.unread(room.unread) : '';
    }
  }

  private async select(room: Room): Promise<void> {
    this.current = room;
    this.renderNav();
    this.heading.textContent = room.title;
    this.log.setAttribute('aria-label', this.t.messagesIn(room.title));
    this.say(room.ended ? this.t.roomEnded : room.readOnly ? this.t.readOnly : '');
    this.setComposing(!room.ended && !room.readOnly);
    this.renderTyping();
    if (!room.loaded && !room.ended) {
      try {
        const page = await this.transport!.history(room.context, undefined, PAGE);
        for (const m of page.messages) room.messages.set(m.index, m);
        room.hasMore = page.hasMore;
        room.loaded = true;
      } catch (e) {
        if (e instanceof LocalError && e.status === 403) return this.roomEnded(room.context);
        // No answer (the connection dropped): the resync after reconnecting loads it.
        if (!(e instanceof LocalError || e instanceof ApiError)) return this.setStatus(this.t.offline);
        return this.failed(e);
      }
    }
    if (this.current !== room) return;
    this.renderLog();
    this.log.scrollTop = this.log.scrollHeight;
    this.markReadIfSeen();
  }

  private roomEnded(context: string): void {
    const room = this.rooms.get(context);
    if (!room || room.ended) return;
    room.ended = true;
    room.typing.clear();
    this.renderNav();
    if (room === this.current) {
      this.say(this.t.roomEnded);
      this.setComposing(false);
      this.renderTyping();
    }
    if ([...this.rooms.values()].every((r) => r.ended)) this.ended();
  }

  // ---- messages ----

  private renderLog(): void {
    const room = this.current;
    this.nodes.clear();
    this.log.replaceChildren(this.earlier);
    if (!room) return;
    const messages = [...room.messages.values()].sort((a, b) => a.index - b.index);
    if (messages.length === 0) this.log.append(el('p', { class: 'empty' }, this.t.noMessages));
    for (const m of messages) this.insert(m);
    this.earlier.hidden = !room.hasMore;
  }

  private messageNode(m: ChatMessage): HTMLElement {
    const mine = m.author !== null && m.author === this.me;
    const time = el('time', { datetime: m.at.toISOString(), title: m.at.toLocaleString(this.o.lang || undefined) });
    time.textContent = m.at.toLocaleTimeString(this.o.lang || undefined, { hour: '2-digit', minute: '2-digit' });
    const author = el('span', { class: 'author' }, mine ? this.t.you : (m.author ?? ''));
    const text = el('p', { class: 'text', dir: 'auto' }, ...linkified(document, m.body));
    return el('div', { class: mine ? 'msg mine' : 'msg', 'data-index': String(m.index) }, el('p', { class: 'meta' }, author, time), text);
  }

  /** Puts a message's node in index order. */
  private insert(m: ChatMessage): void {
    if (this.nodes.has(m.index)) return;
    this.log.querySelector('.empty')?.remove();
    const node = this.messageNode(m);
    let after: HTMLElement | null = null;
    for (const [index, other] of this.nodes) if (index > m.index && (!after || index < Number(after.dataset.index))) after = other;
    this.log.insertBefore(node, after);
    this.nodes.set(m.index, node);
  }

  private atBottom(): boolean {
    const l = this.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight < SEEN_SLACK_PX;
  }

  private received(context: string, m: ChatMessage): void {
    const room = this.rooms.get(context);
    if (!room || room.ended || room.messages.has(m.index)) return;
    const mine = m.author !== null && m.author === this.me;
    if (m.author) room.typing.delete(m.author);
    if (!room.loaded) {
      if (!mine && (room.lastRead === null || m.index > room.lastRead)) room.unread += 1;
      this.renderNav();
      return;
    }
    room.messages.set(m.index, m);
    if (room === this.current) {
      const follow = this.atBottom() || mine;
      this.insert(m);
      if (follow) this.log.scrollTop = this.log.scrollHeight;
      this.renderTyping();
    }
    if (mine && room === this.current) return this.markRead(room);
    if (!mine && (room.lastRead === null || m.index > room.lastRead)) room.unread += 1;
    this.renderNav();
    this.markReadIfSeen();
  }

  private removed(context: string, index: number): void {
    const room = this.rooms.get(context);
    if (!room || !room.messages.delete(index)) return;
    if (room === this.current) {
      this.nodes.get(index)?.remove();
      this.nodes.delete(index);
    }
  }

  private async loadEarlier(): Promise<void> {
    const room = this.current;
    const first = room && oldest(room);
    if (!room || first === null || !this.transport) return;
    try {
      const page = await this.transport.history(room.context, first, PAGE);
      const height = this.log.scrollHeight;
      for (const m of page.messages) room.messages.set(m.index, m);
      room.hasMore = page.hasMore;
      if (this.current !== room) return;
      for (const m of page.messages) this.insert(m);
      this.earlier.hidden = !room.hasMore;
      this.log.scrollTop += this.log.scrollHeight - height;
    } catch (e) {
      this.failed(e);
    }
  }

  /** After a drop: what is newer than what each loaded room has, then the rooms' counts. */
  private async resync(): Promise<void> {
    if (!this.transport || this.stopped) return;
    for (const room of this.rooms.values()) {
      if (!room.loaded || room.ended) continue;
      const known = newest(room) ?? -1;
      let before: number | undefined;
      for (;;) {
        const page = await this.transport.history(room.context, before, PAGE);
        for (const m of page.messages) {
          if (room.messages.has(m.index)) continue;
          room.messages.set(m.index, m);
          if (room === this.current) this.insert(m);
        }
        const first = page.messages[0]?.index;
        if (first === undefined || !page.hasMore || first <= known + 1) break;
        before = first;
      }
    }
    await this.loadRooms();
    // The room on screen, if the drop came before its history did.
    const current = this.current;
    if (current && !current.loaded && !current.ended) await this.select(current);
  }

  private markReadIfSeen(): void {
    const room = this.current;
    if (!room || room.ended || !room.loaded || document.visibilityState !== 'visible') return;
    if (this.log.getClientRects().length === 0 || !this.atBottom()) return;
    this.markRead(room);
  }

  /** The user has seen the room's newest message: the horizon moves there (one request, soon). */
  private markRead(room: Room): void {
    const last = newest(room);
    if (room.unread !== 0) {
      room.unread = 0;
      this.renderNav();
    }
    if (last === null || (room.lastRead !== null && room.lastRead >= last)) return;
    room.lastRead = last;
    if (this.readTimers.has(room.context)) return;
    this.readTimers.set(
      room.context,
      setTimeout(() => {
        this.readTimers.delete(room.context);
        if (room.lastRead !== null && !room.ended) this.transport?.read(room.context, room.lastRead).catch(() => {});
      }, 250),
    );
  }

  private async send(): Promise<void> {
    const room = this.current;
    const body = this.textarea.value;
    if (!room || room.ended || !this.transport || body.trim() === '') return;
    this.sendButton.disabled = true;
    try {
      await this.transport.send(room.context, body);
      if (this.textarea.value === body) this.textarea.value = '';
      this.say('');
    } catch (e) {
      if (e instanceof LocalError && e.status === 403) this.roomEnded(room.context);
      else this.say(this.t.notSent);
    } finally {
      this.sendButton.disabled = room.ended;
      if (!room.ended) this.textarea.focus();
    }
  }

  // ---- typing ----

  private typed(): void {
    const room = this.current;
    const now = Date.now();
    if (!room || room.ended || now - this.lastTypingSent < TYPING_SENT_MS) return;
    this.lastTypingSent = now;
    this.transport?.typing(room.context);
  }

  private someoneTyping(context: string, who: string): void {
    const room = this.rooms.get(context);
    if (!room || who === this.me) return;
    room.typing.set(who, Date.now() + TYPING_SHOWN_MS);
    this.renderTyping();
    setTimeout(() => this.renderTyping(), TYPING_SHOWN_MS + 50);
  }

  private renderTyping(): void {
    const now = Date.now();
    const room = this.current;
    const who = room ? [...room.typing].filter(([, until]) => until > now).map(([name]) => name) : [];
    this.typingLine.textContent = who.length ? this.t.typing(who.join(', ')) : '';
  }

  // ---- notifications ----

  private notifications(): HTMLDetailsElement {
    const t = this.t;
    const result = el('p', { role: 'status' });
    const channel = (kind: 'email' | 'sms') => {
      const input = el('input', {
        type: kind === 'email' ? 'email' : 'tel',
        name: kind === 'email' ? 'email' : 'phone',
        autocomplete: kind === 'email' ? 'email' : 'tel',
        required: '',
      });
      const form = el(
        'form',
        {},
        el('label', {}, kind === 'email' ? t.email : t.phone, input),
        el('button', { type: 'submit', class: 'primary' }, kind === 'email' ? t.byEmail : t.bySms),
      );
      const code = el('input', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: '' });
      const sent = el('p');
      const confirm = el('form', { hidden: '' }, sent, el('label', {}, t.code, code), el('button', { type: 'submit', class: 'primary' }, t.confirm));
      const on = kind === 'email' ? t.emailOn : t.smsOn;
      let address = '';
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const room = this.current;
        if (!room) return;
        address = input.value.trim();
        void this.ask(result, async (token) => {
          const verified =
            kind === 'email'
              ? await this.api.enableEmail(room.context, address, token)
              : await this.api.enableSms(room.context, address, token);
          if (verified) return on;
          confirm.hidden = false;
          code.value = '';
          code.focus();
          return t.codeSent(address);
        });
      });
      confirm.addEventListener('submit', (e) => {
        e.preventDefault();
        void this.ask(result, async (token) => {
          const ok =
            kind === 'email'
              ? await this.api.verifyEmail(address, code.value.trim(), token)
              : await this.api.verifyPhone(address, code.value.trim(), token);
          if (ok) confirm.hidden = true;
          return ok ? on : t.wrongCode;
        });
      });
      return [form, confirm];
    };
    return el('details', { class: 'notify' }, el('summary', {}, t.notifications), el('p', {}, t.notifyIntro), ...channel('email'), ...channel('sms'), result);
  }

  /** Runs a notification call with the context token and says what came of it. */
  private async ask(result: HTMLElement, call: (token: string) => Promise<string>): Promise<void> {
    result.textContent = '';
    try {
      result.textContent = await this.session.withContextToken(call);
    } catch (e) {
      if (e instanceof AccessEnded) return this.ended();
      result.textContent = e instanceof ApiError && e.type !== 'InternalError' && e.message ? e.message : this.t.failed;
    }
  }

  // ---- bits ----

  private setStatus(text: string): void {
    if (this.status.textContent !== text) this.status.textContent = text;
  }

  private say(text: string): void {
    if (this.notice.textContent !== text) this.notice.textContent = text;
  }

  private setComposing(on: boolean): void {
    this.textarea.disabled = !on;
    this.sendButton.disabled = !on;
  }
}
