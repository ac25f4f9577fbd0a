import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { errorMessage } from "./api";
import { Header } from "./components/wallet-ui";
import { Alert, Loading } from "./components/ui";
import { loadConfig } from "./config";
import { AccountPage } from "./pages/Account";
import { AdminPage } from "./pages/Admin";
import { CatalogPage } from "./pages/Catalog";
import { CheckoutReturnPage } from "./pages/CheckoutReturn";
import { CoursePage } from "./pages/Course";
import { LessonPage } from "./pages/Lesson";
import { ProviderPage } from "./pages/Provider";
import { VerifyFormPage, VerifyPage } from "./pages/Verify";
import { Link, match, useLocation } from "./router";
import { refreshSession } from "./session";
import { restoreConnection, startDiscovery } from "./wallet";
import "./styles.css";

function Routes() {
  const { path } = useLocation();
  let params: Record<string, string> | null;
  if (path === "/" || path === "/courses") return <CatalogPage />;
  if ((params = match("/courses/:id/lessons/:n", path))) return <LessonPage id={params.id} n={params.n} />;
  if ((params = match("/courses/:id", path))) return <CoursePage id={params.id} />;
  if (path === "/checkout/return") return <CheckoutReturnPage />;
  if (path === "/account") return <AccountPage />;
  if (path === "/provider") return <ProviderPage />;
  if (path === "/admin") return <AdminPage />;
  if (path === "/verify") return <VerifyFormPage />;
  if ((params = match("/verify/:tokenId", path))) return <VerifyPage tokenId={params.tokenId} />;
  return (
    <section>
      <h1 tabIndex={-1}>Page not found</h1>
      <p>
        There is nothing at <code>{path}</code>. <Link href="/">Back to the courses</Link>.
      </p>
    </section>
  );
}

function App() {
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const { path } = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);

  useEffect(() => {
    startDiscovery();
    loadConfig()
      .then(() => {
        setReady(true);
        restoreConnection();
        refreshSession().catch(() => undefined);
      })
      .catch((err) => setError(errorMessage(err)));
  }, []);

  // On client-side navigation, move focus to the new page's heading (screen readers announce it).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const t = window.setTimeout(() => {
      const heading = main.current?.querySelector<HTMLElement>("h1");
      if (heading) {
        if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
        heading.focus({ preventScroll: true });
      }
    }, 0);
    return () => window.clearTimeout(t);
  }, [path]);

  if (error) {
    return (
      <main id="main" class="container">
        <Alert>Tuition could not start: {error}</Alert>
      </main>
    );
  }
  if (!ready) {
    return (
      <main id="main" class="container">
        <Loading label="Starting Tuition…" />
      </main>
    );
  }
  return (
    <>
      <Header />
      <main id="main" class="container" ref={main}>
        <Routes />
      </main>
      <footer class="site-footer">
        <div class="container">
          <p>
            Tuition — courses paid with crypto or card; certificates anyone can <Link href="/verify">verify on-chain</Link>.
          </p>
        </div>
      </footer>
    </>
  );
}

render(<App />, document.getElementById("app")!);
