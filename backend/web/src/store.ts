// A tiny observable store and a hook to read it from components.
import { useLayoutEffect, useReducer } from "preact/hooks";

export interface Store<T> {
  get(): T;
  set(patch: Partial<T> | ((state: T) => Partial<T>)): void;
  subscribe(listener: () => void): () => void;
}

export function createStore<T extends object>(initial: T): Store<T> {
  let state = initial;
  const listeners = new Set<() => void>();
  return {
    get: () => state,
    set(patch) {
      const next = typeof patch === "function" ? patch(state) : patch;
      state = { ...state, ...next };
      for (const listener of [...listeners]) listener();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export function useStore<T extends object>(store: Store<T>): T {
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const seen = store.get();
  useLayoutEffect(() => {
    const unsubscribe = store.subscribe(() => rerender(undefined));
    // A change between this render and the subscription (a fast /auth/me answer, say) would
    // otherwise be missed, and the component would show stale state ("Checking your session…")
    // until the next change: catch up now.
    if (store.get() !== seen) rerender(undefined);
    return unsubscribe;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [store]);
  return seen;
}
