// Client-side routing with the History API. FastAPI serves index.html for these paths.
import type { AnchorHTMLAttributes, ComponentChildren, TargetedMouseEvent } from "preact";
import { createStore, useStore } from "./store";

export interface Location {
  path: string;
  query: URLSearchParams;
}

function current(): Location {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) };
}

export const locationStore = createStore<Location>(current());

window.addEventListener("popstate", () => locationStore.set(current()));

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  locationStore.set(current());
  window.scrollTo(0, 0);
}

export function useLocation(): Location {
  return useStore(locationStore);
}

/** Match `/courses/:id` style patterns; returns the params or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split("/").filter(Boolean);
  const s = path.split("/").filter(Boolean);
  if (p.length !== s.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(":")) params[p[i].slice(1)] = decodeURIComponent(s[i]);
    else if (p[i] !== s[i]) return null;
  }
  return params;
}

type LinkProps = Omit<AnchorHTMLAttributes<HTMLAnchorElement>, "href" | "role"> & {
  href: string;
  children?: ComponentChildren;
};

export function Link({ href, children, onClick, ...rest }: LinkProps) {
  const location = useLocation();
  const active = location.path === href;
  return (
    <a
      href={href}
      aria-current={active ? "page" : undefined}
      {...rest}
      onClick={(event: TargetedMouseEvent<HTMLAnchorElement>) => {
        if (onClick) (onClick as (e: TargetedMouseEvent<HTMLAnchorElement>) => void)(event);
        if (
          event.defaultPrevented ||
          event.button !== 0 ||
          event.metaKey ||
          event.ctrlKey ||
          event.shiftKey ||
          event.altKey ||
          !href.startsWith("/")
        ) {
          return;
        }
        event.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}
