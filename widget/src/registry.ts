/**
 * How the loader and the chunks it loads find each other: one registry per widget version on
 * the window, under a symbol, so two versions on one page (or a page's own globals) never mix.
 */
type Waiter = (value: unknown) => void;
interface Registry {
  values: Map<string, unknown>;
  waiters: Map<string, Waiter[]>;
}

function registry(): Registry {
  const key = Symbol.for(`context-chat@${__VERSION__}`);
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  return (g[key] ??= { values: new Map(), waiters: new Map() });
}

/** A chunk hands over what it exports. */
export function register(name: string, value: unknown): void {
  const r = registry();
  r.values.set(name, value);
  for (const w of r.waiters.get(name) ?? []) w(value);
  r.waiters.delete(name);
}

/** What chunk `name` registered, once it has. */
export function registered<T>(name: string): Promise<T> {
  const r = registry();
  if (r.values.has(name)) return Promise.resolve(r.values.get(name) as T);
  return new Promise<T>((resolve) => {
    const list = r.waiters.get(name) ?? [];
    list.push(resolve as Waiter);
    r.waiters.set(name, list);
  });
}
