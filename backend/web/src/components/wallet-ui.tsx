// Header with navigation, the wallet dialog, the wrong-network prompt and the sign-in control.
import { useEffect, useRef, useState } from "preact/hooks";
import { errorMessage } from "../api";
import { qrSvg } from "../certificate";
import { config, networks, type NetworkInfo } from "../config";
import { shortAddress } from "../format";
import { Link } from "../router";
import { sessionMismatch, sessionStore, signIn, signOut } from "../session";
import { useStore } from "../store";
import {
  connect,
  disconnect,
  isWrongNetwork,
  switchNetwork,
  walletOptions,
  walletStore,
  type WalletOption,
} from "../wallet";
import { Alert, CopyButton } from "./ui";

// A global "open the wallet dialog" switch so any page can ask for a connection.
let openDialog: (() => void) | null = null;
export function requestWalletConnection(): void {
  openDialog?.();
}

export function Header() {
  const wallet = useStore(walletStore);
  const session = useStore(sessionStore);
  const [menuOpen, setMenuOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const doSignIn = async () => {
    setError(null);
    try {
      await signIn();
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  return (
    <header class="site-header">
      <div class="header-inner">
        <Link href="/" class="brand">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <span>Tuition</span>
        </Link>
        <button
          type="button"
          class="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="site-nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <nav id="site-nav" class={menuOpen ? "open" : ""} aria-label="Main" onClick={() => setMenuOpen(false)}>
          <ul>
            <li>
              <Link href="/">Courses</Link>
            </li>
            <li>
              <Link href="/account">My account</Link>
            </li>
            <li>
              <Link href="/provider">Teach</Link>
            </li>
            <li>
              <Link href="/verify">Verify a certificate</Link>
            </li>
            {session.user?.roles?.includes("admin") && (
              <li>
                <Link href="/admin">Admin</Link>
              </li>
            )}
          </ul>
        </nav>
        <div class="account-controls">
          {wallet.status === "connected" && wallet.address ? (
            <>
              <span class="wallet-chip" data-testid="wallet-address" title={wallet.address}>
                <span class="dot" aria-hidden="true" />
                <span class="visually-hidden">Connected wallet </span>
                {shortAddress(wallet.address)}
              </span>
              {session.user && !sessionMismatch() ? (
                <button type="button" class="button-secondary button-small" onClick={() => signOut().catch(() => undefined)}>
                  Sign out
                </button>
              ) : (
                <button type="button" class="button-small" onClick={doSignIn} disabled={session.signingIn || isWrongNetwork(wallet)}>
                  {session.signingIn ? "Check your wallet…" : "Sign in"}
                </button>
              )}
              <button type="button" class="button-link button-small" onClick={() => disconnect()}>
                Disconnect
              </button>
            </>
          ) : (
            <>
              {session.user && (
                <>
                  <span class="wallet-chip muted" title={session.user.address}>
                    Signed in as {shortAddress(session.user.address)}
                  </span>
                  <button type="button" class="button-secondary button-small" onClick={() => signOut().catch(() => undefined)}>
                    Sign out
                  </button>
                </>
              )}
              <button type="button" class="button-small" onClick={() => requestWalletConnection()} data-testid="connect-wallet">
                {wallet.status === "connecting" ? "Connecting…" : "Connect wallet"}
              </button>
            </>
          )}
        </div>
      </div>
      {error && (
        <div class="header-alert">
          <Alert>
            {error}{" "}
            <button type="button" class="button-link" onClick={() => setError(null)}>
              Dismiss
            </button>
          </Alert>
        </div>
      )}
      <NetworkBanner />
      {session.user && wallet.address && sessionMismatch() && (
        <div class="header-alert">
          <Alert kind="warning">
            You are signed in as {shortAddress(session.user.address)} but your wallet is on {shortAddress(wallet.address)}.
            Sign in again to use this account.
          </Alert>
        </div>
      )}
      <WalletDialog />
    </header>
  );
}

/** A button asking the wallet to switch to (or add) `network`, with the wallet's refusal shown. */
export function SwitchChainButton({ network, class: className }: { network: NetworkInfo; class?: string }) {
  const wallet = useStore(walletStore);
  const [error, setError] = useState<string | null>(null);
  return (
    <>
      <button
        type="button"
        class={className}
        disabled={wallet.switching}
        onClick={async () => {
          setError(null);
          try {
            await switchNetwork(network.chainId);
          } catch (err) {
            setError(errorMessage(err));
          }
        }}
      >
        {wallet.switching ? "Switching…" : `Switch to ${network.chainName}`}
      </button>
      {error && <p class="banner-error">{error}</p>}
    </>
  );
}

export function NetworkBanner() {
  const wallet = useStore(walletStore);
  if (!isWrongNetwork(wallet)) return null;
  return (
    <div class="network-banner" role="alert" data-testid="wrong-network">
      <p>
        <strong>Wrong network.</strong> Your wallet is on chain {wallet.chainId ?? "unknown"}; Tuition runs on{" "}
        {networks().map((n, i) => (
          <span key={n.chainId}>
            {i > 0 && (i === networks().length - 1 ? " and " : ", ")}
            <strong>{n.chainName}</strong> (chain {n.chainId})
          </span>
        ))}
        . Payments and sign-in are disabled until you switch.
      </p>
      <SwitchChainButton network={config()} />
    </div>
  );
}

/** In a payment panel: the wallet is on a chain Tuition does not run on. Says so and offers the
 * switch to `target` (the chain of the chosen price), so nothing is ever sent there. */
export function UnsupportedChain({ chainId, target }: { chainId: number | null; target: NetworkInfo | null }) {
  return (
    <div class="alert alert-warning" role="alert" data-testid="unsupported-chain">
      <p>
        Your wallet is on chain {chainId ?? "unknown"}, where Tuition does not sell courses. Payments here work on{" "}
        {networks().map((n) => n.chainName).join(" and ")}.
      </p>
      <SwitchChainButton network={target ?? config()} class="button-small" />
    </div>
  );
}

function WalletDialog() {
  const wallet = useStore(walletStore);
  const dialog = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [qr, setQr] = useState<string | null>(null);
  const [, force] = useState(0);

  useEffect(() => {
    openDialog = () => {
      setError(null);
      force((n) => n + 1);
      dialog.current?.showModal();
    };
    return () => {
      openDialog = null;
    };
  }, []);

  useEffect(() => {
    if (wallet.status === "connected") dialog.current?.close();
  }, [wallet.status]);

  useEffect(() => {
    if (!wallet.walletConnectUri) {
      setQr(null);
      return;
    }
    qrSvg(wallet.walletConnectUri).then(setQr).catch(() => setQr(null));
  }, [wallet.walletConnectUri]);

  const options = dialog.current?.open ? walletOptions() : [];

  const choose = async (option: WalletOption) => {
    setError(null);
    try {
      await connect(option);
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  return (
    <dialog ref={dialog} class="wallet-dialog" aria-labelledby="wallet-dialog-title" onClose={() => {
        setError(null);
        // Closing the dialog abandons a connection still waiting for the wallet.
        if (walletStore.get().status === "connecting") walletStore.set({ status: "disconnected", walletConnectUri: null });
      }}>
      <h2 id="wallet-dialog-title">Connect a wallet</h2>
      {options.length === 0 && (
        <p>
          No wallet found in this browser. Install a browser wallet (for example MetaMask, Rabby or Coinbase Wallet), or
          pay by card: a wallet is only needed for crypto payments and certificates.
        </p>
      )}
      <ul class="wallet-options">
        {options.map((option) => (
          <li key={option.id}>
            <button type="button" class="wallet-option" onClick={() => choose(option)} disabled={wallet.status === "connecting"}>
              {option.icon ? <img src={option.icon} alt="" width={28} height={28} /> : <span class="wallet-icon" aria-hidden="true">◆</span>}
              <span>{option.name}</span>
            </button>
          </li>
        ))}
      </ul>
      {wallet.walletConnectUri && (
        <div class="walletconnect-qr">
          <p>Scan with a WalletConnect wallet on your phone:</p>
          {qr && <div class="qr" role="img" aria-label="WalletConnect QR code" dangerouslySetInnerHTML={{ __html: qr }} />}
          <CopyButton text={wallet.walletConnectUri} label="Copy link" />
        </div>
      )}
      {wallet.status === "connecting" && <p role="status">Waiting for the wallet…</p>}
      {error && <Alert>{error}</Alert>}
      <form method="dialog">
        <button type="submit" class="button-secondary">
          Close
        </button>
      </form>
    </dialog>
  );
}

/** Inline prompt used by pages: connect → right network → signed in. */
export function RequireSignIn({
  children,
  what = "continue",
  title,
}: {
  children: preact.ComponentChildren;
  what?: string;
  title?: string; // a page heading to show while the content is locked
}) {
  const wallet = useStore(walletStore);
  const session = useStore(sessionStore);
  const [error, setError] = useState<string | null>(null);
  if (session.user && !sessionMismatch()) return <>{children}</>;
  const heading = title ? <h1 tabIndex={-1}>{title}</h1> : null;
  if (!session.checked)
    return (
      <>
        {heading}
        <p role="status">Checking your session…</p>
      </>
    );
  return (
    <>
    {heading}
    <section class="card sign-in-prompt" aria-label="Sign in">
      {wallet.status !== "connected" ? (
        <>
          <p>Connect your wallet and sign in to {what}.</p>
          <button type="button" onClick={() => requestWalletConnection()}>
            Connect wallet
          </button>
        </>
      ) : isWrongNetwork(wallet) ? (
        <p>Switch your wallet to {config().chainName} (see above) to sign in.</p>
      ) : (
        <>
          <p>Sign in with your wallet to {what}. It costs nothing: you sign a message, no transaction.</p>
          <button
            type="button"
            disabled={session.signingIn}
            onClick={async () => {
              setError(null);
              try {
                await signIn();
              } catch (err) {
                setError(errorMessage(err));
              }
            }}
          >
            {session.signingIn ? "Check your wallet…" : "Sign in with Ethereum"}
          </button>
        </>
      )}
      {error && <Alert>{error}</Alert>}
    </section>
    </>
  );
}
