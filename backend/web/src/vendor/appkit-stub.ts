// Stand-in for "@reown/appkit/core" (see vite.config.ts): Tuition never enables WalletConnect's
// built-in QR modal, so this is only reached if someone sets showQrModal: true by mistake.
export function createAppKit(): never {
  throw new Error("WalletConnect's AppKit modal is not bundled; Tuition renders its own QR code.");
}
