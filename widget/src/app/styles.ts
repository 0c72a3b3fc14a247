/**
 * The widget's look, inside its shadow root (the page's styles do not reach in, ours do not
 * leak out). Themed by custom properties on the element or any ancestor:
 * --context-chat-accent, --context-chat-on-accent, --context-chat-bg, --context-chat-fg,
 * --context-chat-muted, --context-chat-mine, --context-chat-font, --context-chat-radius,
 * --context-chat-height, --context-chat-focus.
 */
export const CSS = `
:host { color-scheme: light; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
.chat { display: flex; flex-direction: column; height: var(--context-chat-height, 32rem);
  background: var(--context-chat-bg, #fff); color: var(--context-chat-fg, #111827);
  border: 1px solid var(--context-chat-muted, #6b7280); border-radius: var(--context-chat-radius, .75rem);
  overflow: hidden; font-size: 15px; line-height: 1.4; }
header { display: flex; align-items: center; gap: .5rem; padding: .5rem .75rem;
  background: var(--context-chat-accent, #1a56db); color: var(--context-chat-on-accent, #fff); }
header h2 { font-size: 1rem; margin: 0; flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
header .status { margin: 0; font-size: .8rem; }
header button { font: inherit; background: transparent; color: inherit; border: 1px solid currentColor; border-radius: .4rem; cursor: pointer; }
.main { display: flex; flex: 1; min-height: 0; }
nav { width: 9rem; border-right: 1px solid #e5e7eb; overflow-y: auto; }
nav[hidden] { display: none; }
nav ul { list-style: none; margin: 0; padding: 0; }
nav button { font: inherit; width: 100%; display: flex; justify-content: space-between; gap: .25rem; text-align: left;
  padding: .5rem .6rem; border: 0; background: transparent; color: inherit; cursor: pointer; }
nav button[aria-current="true"] { background: #e8eefc; font-weight: 600; }
.badge { background: var(--context-chat-accent, #1a56db); color: var(--context-chat-on-accent, #fff);
  border-radius: 999px; padding: 0 .45rem; font-size: .75rem; font-weight: 600; }
.badge:empty { display: none; }
.room { display: flex; flex-direction: column; flex: 1; min-width: 0; }
.log { flex: 1; overflow-y: auto; padding: .5rem .75rem; }
.earlier { font: inherit; font-size: .85rem; display: block; margin: 0 auto .5rem; background: none; border: 0;
  color: var(--context-chat-accent, #1a56db); text-decoration: underline; cursor: pointer; }
.empty { color: var(--context-chat-muted, #6b7280); text-align: center; }
.msg { margin: .35rem 0; max-width: 85%; padding: .35rem .6rem; border-radius: .6rem; background: #f3f4f6; }
.msg.mine { margin-left: auto; background: var(--context-chat-mine, #dbe6fe); }
.msg .meta { margin: 0; font-size: .75rem; color: var(--context-chat-muted, #4b5563); display: flex; gap: .5rem; }
.msg .author { font-weight: 600; }
.msg .text { margin: .1rem 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.msg a { color: inherit; }
.typing { min-height: 1.3em; margin: 0 .75rem; font-size: .8rem; color: var(--context-chat-muted, #4b5563); }
.notice { margin: .5rem .75rem; padding: .4rem .6rem; border-radius: .4rem; background: #fef3c7; color: #78350f; }
.notice:empty { display: none; }
form.compose { display: flex; gap: .5rem; padding: .5rem .75rem; border-top: 1px solid #e5e7eb; }
form.compose textarea { flex: 1; font: inherit; resize: none; padding: .4rem .5rem; border-radius: .4rem;
  border: 1px solid var(--context-chat-muted, #6b7280); min-height: 2.4rem; }
button.primary { font: inherit; border: 0; border-radius: .4rem; padding: .4rem .9rem; cursor: pointer;
  background: var(--context-chat-accent, #1a56db); color: var(--context-chat-on-accent, #fff); }
button:disabled, textarea:disabled { opacity: .6; cursor: not-allowed; }
details.notify { padding: 0 .75rem .5rem; font-size: .85rem; }
details.notify summary { cursor: pointer; padding: .25rem 0; }
details.notify form { display: flex; flex-wrap: wrap; gap: .35rem; align-items: end; margin: .35rem 0; }
details.notify label { display: flex; flex-direction: column; flex: 1; min-width: 10rem; }
details.notify input { font: inherit; padding: .3rem .4rem; border-radius: .4rem; border: 1px solid var(--context-chat-muted, #6b7280); }
details.notify p { margin: .25rem 0; }
:focus-visible { outline: 3px solid var(--context-chat-focus, #f59e0b); outline-offset: 1px; }
.vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;
