// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ICourseCertificate
/// @notice Soulbound (ERC-5192) course-completion certificates that anyone can verify from the
/// chain alone.
/// @dev Design:
/// - One certificate per (learner, course): the token id is `courseId << 160 | uint160(learner)`,
///   so ERC-721's own "already minted" check enforces uniqueness, a voucher can never be
///   replayed (replay protection keyed by learner and course, never by signature bytes), and no
///   counter or extra index is written.
/// - Per certificate, besides ERC-721's owner and balance, one storage slot: `issuedAt` (uint32
///   unix seconds) and `recordHash` (bytes28). The record hash is the first 28 bytes of the
///   keccak-256 of the canonical off-chain certificate record (name, grade, date and a random
///   salt, so nothing personal can be guessed from the chain).
/// - The issuer a verifier sees is the course's provider (immutable in CourseMarket); the key
///   that minted or signed the voucher is in `CertificateMinted`.
/// - Revocation is written only when it happens and keeps the certificate: a revoked certificate
///   verifies as revoked, not as missing.
/// - Only a learner who holds access to the course in CourseMarket (`hasAccess`, from any rail)
///   can be certified, whoever the issuer is, the platform's key included. Losing access later
///   (a refund, a lost card dispute) does not burn the certificate: the platform revokes it with
///   reason 5 (payment refunded) or 6 (payment disputed), so it verifies as revoked.
interface ICourseCertificate {
    /// @notice Everything a verifier needs, in one call.
    struct Certificate {
        address holder;
        uint256 courseId;
        address issuer; // the course's provider
        uint32 issuedAt;
        bytes28 recordHash;
        bool revoked;
        uint32 revokedAt;
        uint8 revokeReason;
    }

    /// @notice A certificate was issued; `signer` is the minting account or the voucher's signer.
    event CertificateMinted(
        uint256 indexed tokenId,
        address indexed learner,
        uint256 indexed courseId,
        address signer,
        bytes28 recordHash
    );
    /// @notice A certificate was revoked with a reason code (1 = issued in error, 2 = academic
    /// misconduct, 3 = course withdrawn, 4 = learner request, 5 = payment refunded, 6 = payment
    /// disputed; others are issuer-defined).
    event CertificateRevoked(uint256 indexed tokenId, uint8 reason, address by);
    /// @notice `provider` authorized (or de-authorized) `issuer` to certify its courses.
    event IssuerSet(address indexed provider, address indexed issuer, bool allowed);

    error Soulbound(uint256 tokenId);
    error NotIssuer(uint256 courseId, address account);
    error VoucherExpired(uint256 deadline);
    error AlreadyCertified(address learner, uint256 courseId);
    error AlreadyRevoked(uint256 tokenId);
    error UnknownCertificate(uint256 tokenId);
    error ZeroRecordHash();
    /// @notice `learner` has no access to `courseId` in the market, so cannot be certified.
    error NoCourseAccess(uint256 courseId, address learner);
    /// @notice Course ids are below 2**96 (the token id packs one with an address).
    error InvalidCourseId(uint256 courseId);

    /// @notice Issue a certificate to `learner` for `courseId`. Caller: an ISSUER (platform minter)
    /// or an issuer the course's provider authorized.
    function mint(address learner, uint256 courseId, bytes28 recordHash)
        external
        returns (uint256 tokenId);

    /// @notice Claim a certificate with an issuer's EIP-712 voucher; the caller is the learner and
    /// pays the gas. Typed data: `Voucher(address learner,uint256 courseId,bytes28 recordHash,
    /// uint256 deadline)` in domain (name "Tuition Certificate", version "1", chain id, this
    /// contract).
    function claim(uint256 courseId, bytes28 recordHash, uint256 deadline, bytes calldata signature)
        external
        returns (uint256 tokenId);

    /// @notice Revoke a certificate. Caller: an ISSUER or an issuer of the course's provider.
    function revoke(uint256 tokenId, uint8 reason) external;

    /// @notice Authorize (or stop authorizing) `issuer` to certify the caller's courses.
    function setIssuer(address issuer, bool allowed) external;

    /// @notice Whether `account` may issue and revoke certificates of `courseId`.
    function isIssuerFor(uint256 courseId, address account) external view returns (bool);

    /// @notice The facts of a certificate; reverts with UnknownCertificate if never issued.
    function verify(uint256 tokenId) external view returns (Certificate memory);

    /// @notice The token id of (`learner`, `courseId`), minted or not.
    function tokenIdFor(address learner, uint256 courseId) external pure returns (uint256);

    /// @notice The EIP-712 digest an issuer signs for a voucher.
    function voucherDigest(address learner, uint256 courseId, bytes28 recordHash, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice The CourseMarket whose courses this contract certifies.
    function market() external view returns (address);
}
