// Chain access: the read-only public client (no wallet needed) and the ABIs the app uses.
import {
  createPublicClient,
  defineChain,
  http,
  parseAbi,
  type Chain,
  type PublicClient,
} from "viem";
import { config, networkOf, type NetworkInfo } from "./config";

export const marketAbi = parseAbi([
  "function purchase(uint256 courseId, address token, uint256 maxAmount, address recipient, bytes32 orderRef, uint32 quotedWindow) payable",
  "function purchaseWithPermit(uint256 courseId, address token, uint256 maxAmount, address recipient, bytes32 orderRef, uint32 quotedWindow, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
  "function createCourse(string title, uint32 refundWindow) returns (uint256)",
  "function setPrice(uint256 courseId, address token, uint256 price)",
  "function removePrice(uint256 courseId, address token)",
  "function withdraw(address token) returns (uint256)",
  "function hasAccess(uint256 courseId, address learner) view returns (bool)",
  "function priceOf(uint256 courseId, address token) view returns (uint256 price, bool accepted)",
  "function courseTitle(uint256 courseId) view returns (string)",
  "function courseProvider(uint256 courseId) view returns (address)",
  "function withdrawableOf(address payee, address token) view returns (uint256)",
  "function escrowOf(address provider, address token) view returns (uint256 net, uint256 fee)",
  "event CourseCreated(uint256 indexed courseId, address indexed provider, uint32 refundWindow, string title)",
  "error UnknownCourse(uint256 courseId)",
  "error CourseNotListed(uint256 courseId)",
  "error TokenNotAllowed(address token)",
  "error TokenNotAccepted(uint256 courseId, address token)",
  "error PriceAboveMax(uint256 price, uint256 maxAmount)",
  "error RefundWindowBelowQuote(uint256 courseId, uint32 refundWindow, uint32 quotedWindow)",
  "error AlreadyHasAccess(uint256 courseId, address learner)",
  "error IncorrectPayment(uint256 expected, uint256 sent)",
  "error TransferShortfall(address token, uint256 expected, uint256 received)",
  "error NotCourseManager(uint256 courseId, address account)",
  "error NothingToWithdraw(address payee, address token)",
  "error EnforcedPause()",
  "error ERC2612ExpiredSignature(uint256 deadline)",
  "error ERC2612InvalidSigner(address signer, address owner)",
  "error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed)",
  "error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)",
]);

/** What a person should read for the market's custom errors. */
export const MARKET_ERROR_TEXT: Record<string, string> = {
  UnknownCourse: "This course is not registered on-chain.",
  CourseNotListed: "This course is not for sale at the moment.",
  TokenNotAllowed: "This token is not accepted by the marketplace.",
  TokenNotAccepted: "This course is not sold for that token.",
  PriceAboveMax: "The price changed since your quote. Try again to get the new price.",
  RefundWindowBelowQuote: "The provider shortened the refund window since your quote, so nothing was charged. Try again to see the new terms.",
  AlreadyHasAccess: "You already have this course.",
  IncorrectPayment: "The amount sent does not match the price.",
  TransferShortfall: "The token transferred less than the price (fee-on-transfer tokens are not supported).",
  NotCourseManager: "Only the course's provider (or a delegate) can do this.",
  NothingToWithdraw: "There is nothing to withdraw in this token yet.",
  EnforcedPause: "Purchases are paused right now. Please try again later.",
  ERC2612ExpiredSignature: "The permit signature expired. Try again.",
  ERC2612InvalidSigner: "The permit signature is invalid. Try again.",
  ERC20InsufficientAllowance: "The token allowance is too low.",
  ERC20InsufficientBalance: "Not enough tokens in your wallet.",
};

export const erc20Abi = parseAbi([
  "function name() view returns (string)",
  "function symbol() view returns (string)",
  "function decimals() view returns (uint8)",
  "function balanceOf(address owner) view returns (uint256)",
  "function allowance(address owner, address spender) view returns (uint256)",
  "function approve(address spender, uint256 amount) returns (bool)",
  "function nonces(address owner) view returns (uint256)",
  "function DOMAIN_SEPARATOR() view returns (bytes32)",
  "function eip712Domain() view returns (bytes1 fields, string name, string version, uint256 chainId, address verifyingContract, bytes32 salt, uint256[] extensions)",
]);

export const certificateAbi = parseAbi([
  "struct Certificate { address holder; uint256 courseId; address issuer; bool issuerVerified; uint32 issuedAt; bytes28 recordHash; bool revoked; uint32 revokedAt; uint8 revokeReason; bool removed; uint256 replacedBy; }",
  "function verify(uint256 tokenId) view returns (Certificate)",
  "function tokenURI(uint256 tokenId) view returns (string)",
  "function tokenIdFor(address learner, uint256 courseId) view returns (uint256)",
  "function market() view returns (address)",
  "function name() view returns (string)",
  "function claim(uint256 courseId, bytes28 recordHash, uint256 deadline, bytes signature) returns (uint256)",
  "function remove(uint256 tokenId)",
  "function ownerOf(uint256 tokenId) view returns (address)",
  "struct Provider { string name; string domain; bool verified; uint32 verifiedAt; address verifiedBy; }",
  "function providerRecord(address provider) view returns (Provider)",
  "event CertificateRevoked(uint256 indexed tokenId, uint8 reason, address by)",
  "error UnknownCertificate(uint256 tokenId)",
]);

// One chain definition and one client per configured chain (the course page reads several).
const chainCache = new Map<string, Chain>();
const clientCache = new Map<string, PublicClient>();

export function appChain(cfg: NetworkInfo = config()): Chain {
  const key = `${cfg.chainId}|${cfg.rpcUrl}`;
  const cached = chainCache.get(key);
  if (cached) return cached;
  const chain = defineChain({
    id: cfg.chainId,
    name: cfg.chainName,
    nativeCurrency: cfg.nativeCurrency,
    rpcUrls: { default: { http: [cfg.rpcUrl] } },
    blockExplorers: cfg.blockExplorerUrl
      ? { default: { name: "Explorer", url: cfg.blockExplorerUrl } }
      : undefined,
  });
  chainCache.set(key, chain);
  return chain;
}

/** Reads go straight to the chain's RPC endpoint, never through our API. */
export function publicClient(cfg: NetworkInfo = config()): PublicClient {
  const key = `${cfg.chainId}|${cfg.rpcUrl}`;
  const cached = clientCache.get(key);
  if (cached) return cached;
  const client = createPublicClient({
    chain: appChain(cfg),
    transport: http(cfg.rpcUrl, { retryCount: 2, timeout: 15_000 }),
    pollingInterval: 1_000,
  }) as PublicClient;
  clientCache.set(key, client);
  return client;
}

/** The read-only client of a configured chain (the API's own when none is named). */
export function clientOn(chainId?: number | null): PublicClient {
  if (chainId == null) return publicClient();
  const network = networkOf(chainId);
  if (!network) throw new Error(`Tuition does not run on chain ${chainId}.`);
  return publicClient(network);
}

/** tokenIdFor(learner, courseId) = courseId << 160 | learner, computed locally. */
export function certificateTokenId(learner: string, courseId: bigint | number): bigint {
  return (BigInt(courseId) << 160n) | BigInt(learner);
}

// Token id: generation << 224 | courseId << 160 | learner (the generation counts corrections).
export function splitTokenId(tokenId: bigint): { courseId: bigint; learner: `0x${string}`; generation: bigint } {
  const mask = (1n << 160n) - 1n;
  const learner = `0x${(tokenId & mask).toString(16).padStart(40, "0")}` as `0x${string}`;
  return { courseId: (tokenId >> 160n) & ((1n << 64n) - 1n), learner, generation: tokenId >> 224n };
}
