/**
 * Every string the widget shows or reads out, in one table per language. A language is
 * complete or absent: the type makes a missing string a compile error.
 */
const en = {
    openChat: 'Open chat',
    chat: 'Chat',
    loading: 'Loading the chat…',
    rooms: 'Rooms',
    unread: (n: number) => (n === 1 ? '1 unread message' : `${n} unread messages`),
    messagesIn: (room: string) => `Messages in ${room}`,
    message: 'Message',
    send: 'Send',
    earlier: 'Earlier messages',
    noMessages: 'No messages yet. Say hello!',
    typing: (who: string) => `${who} is typing…`,
    you: 'You',
    connecting: 'Connecting…',
    connected: 'Connected',
    offline: 'Connection lost. Reconnecting…',
    accessEnded: 'Your access to this chat has ended.',
    roomEnded: 'Your access to this room has ended.',
    readOnly: 'You can read this room, but not write in it.',
    notAMember: 'You are not in this room.',
    waiting: (s: number) => `Too many requests. Trying again in ${s} s…`,
    failed: 'Something went wrong. Please try again.',
    notSent: 'The message was not sent. Please try again.',
    notifications: 'Notifications',
    notifyIntro: 'Get new messages of this room by email or text while you are away.',
    email: 'Email address',
    byEmail: 'Notify me by email',
    phone: 'Phone number (+4917…)',
    bySms: 'Notify me by text',
    code: 'Code',
    confirm: 'Confirm',
    codeSent: (to: string) => `We sent a code to ${to}. Enter it here.`,
    emailOn: 'You will get an email about new messages in this room.',
    smsOn: 'You will get a text about new messages in this room.',
    wrongCode: 'That code is not right, or has expired.',
    close: 'Close',
};

/** A language's table: every string of the English one. */
export type Strings = typeof en;

const de: Strings = {
    openChat: 'Chat öffnen',
    chat: 'Chat',
    loading: 'Der Chat wird geladen…',
    rooms: 'Räume',
    unread: (n: number) => (n === 1 ? '1 ungelesene Nachricht' : `${n} ungelesene Nachrichten`),
    messagesIn: (room: string) => `Nachrichten in ${room}`,
    message: 'Nachricht',
    send: 'Senden',
    earlier: 'Frühere Nachrichten',
    noMessages: 'Noch keine Nachrichten. Sag hallo!',
    typing: (who: string) => `${who} schreibt…`,
    you: 'Du',
    connecting: 'Verbinde…',
    connected: 'Verbunden',
    offline: 'Verbindung verloren. Verbinde neu…',
    accessEnded: 'Dein Zugang zu diesem Chat ist beendet.',
    roomEnded: 'Dein Zugang zu diesem Raum ist beendet.',
    readOnly: 'Du kannst diesen Raum lesen, aber nicht darin schreiben.',
    notAMember: 'Du bist nicht in diesem Raum.',
    waiting: (s: number) => `Zu viele Anfragen. Neuer Versuch in ${s} s…`,
    failed: 'Etwas ist schiefgegangen. Bitte versuche es noch einmal.',
    notSent: 'Die Nachricht wurde nicht gesendet. Bitte versuche es noch einmal.',
    notifications: 'Benachrichtigungen',
    notifyIntro: 'Erhalte neue Nachrichten dieses Raums per E-Mail oder SMS, wenn du nicht da bist.',
    email: 'E-Mail-Adresse',
    byEmail: 'Per E-Mail benachrichtigen',
    phone: 'Telefonnummer (+4917…)',
    bySms: 'Per SMS benachrichtigen',
    code: 'Code',
    confirm: 'Bestätigen',
    codeSent: (to: string) => `Wir haben einen Code an ${to} geschickt. Gib ihn hier ein.`,
    emailOn: 'Du bekommst eine E-Mail über neue Nachrichten in diesem Raum.',
    smsOn: 'Du bekommst eine SMS über neue Nachrichten in diesem Raum.',
    wrongCode: 'Dieser Code stimmt nicht oder ist abgelaufen.',
    close: 'Schließen',
};

export const strings = { en, de };
export type Language = keyof typeof strings;

/** The table for `lang` (`de-AT` → German), English when there is none. */
export function stringsFor(lang: string | null | undefined): Strings {
  const primary = (lang ?? '').toLowerCase().split('-')[0] as Language;
  return strings[primary] ?? strings.en;
}
