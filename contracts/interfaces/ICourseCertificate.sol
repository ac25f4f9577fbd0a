// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ICourseCertificate
/// @notice Soulbound (ERC-5192) course-completion certificates that anyone can verify from the
/// chain alone.
/// @dev Design:
/// - At most one live certificate per (learner, course). The token id packs
///   `generation << 224 | courseId << 160 | uint160(learner)`: generation 0 is the first
///   certificate of the pair, and a correction (`reissue`) or an issue after the holder removed
///   a valid one takes the next generation, so every certificate keeps its own id and history.
///   `tokenIdFor` answers the pair's current generation; a voucher cannot be replayed onto a
///   live or revoked certificate (replay protection keyed by learner and course, never by
///   signature bytes).
/// - Per certificate, besides ERC-721's owner and balance, one storage slot: `issuedAt` (uint32
///   unix seconds) and `recordHash` (bytes28). The record hash is the first 28 bytes of the
///   keccak-256 of the canonical off-chain certificate record (name, grade, date and a random
///   salt, so nothing personal can be guessed from the chain).
/// - The issuer a verifier sees is the course's provider (immutable in CourseMarket) and that
///   provider's record here: a name and website domain the provider sets, and whether the
///   platform (VERIFIER_ROLE) verified them. Changing the name or domain drops the verification.
///   The key that minted or signed the voucher is in `CertificateMinted`.
/// - Revocation is written only when it happens and keeps the certificate: a revoked certificate
///   verifies as revoked, not as missing. Reason 7 (corrected) is only written by `reissue`,
///   which links the revoked certificate to its replacement.
/// - The holder may remove (burn) its certificate; nothing else moves a token (ERC-5192
///   `locked` is true for every live token). A removed certificate still verifies, as removed.
/// - Only a learner who holds access to the course in CourseMarket (`hasAccess`, from any rail)
///   can be certified, whoever the issuer is, the platform's key included. Losing access later
///   (a refund, a lost card dispute) does not burn the certificate: the platform revokes it with
///   reason 5 (payment refunded) or 6 (payment disputed), so it verifies as revoked.
interface ICourseCertificate {
    /// @notice Everything a verifier needs, in one call.
    struct Certificate {
        address holder; // the learner it was issued to (also once removed)
        uint256 courseId;
        address issuer; // the course's provider
        bool issuerVerified; // the provider's record is verified by the platform
        uint32 issuedAt;
        bytes28 recordHash;
        bool revoked;
        uint32 revokedAt;
        uint8 revokeReason;
        bool removed; // burned by its holder
        uint256 replacedBy; // the certificate that corrects this one, 0 if none
    }

    /// @notice A provider's public record.
    struct Provider {
        string name;
        string domain;
        bool verified;
        uint32 verifiedAt; // when verified (0 if not)
        address verifiedBy; // the platform key that verified it (zero if not)
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
    /// disputed, 7 = corrected (replaced, see CertificateReplaced); others are issuer-defined).
    event CertificateRevoked(uint256 indexed tokenId, uint8 reason, address by);
    /// @notice `provider` authorized (or de-authorized) `issuer` to certify its courses.
    event IssuerSet(address indexed provider, address indexed issuer, bool allowed);
    /// @notice The holder removed (burned) its certificate.
    event CertificateRemoved(uint256 indexed tokenId, address indexed holder);
    /// @notice `tokenId` (revoked as corrected) is replaced by `newTokenId`.
    event CertificateReplaced(uint256 indexed tokenId, uint256 indexed newTokenId);
    /// @notice `provider` set its public name and website domain (unverified until the platform
    /// verifies them).
    event ProviderProfileSet(address indexed provider, string name, string domain);
    /// @notice The platform verified (or stopped verifying) `provider`'s record; `profileHash`
    /// is `keccak256(abi.encode(name, domain))` of the record it applies to.
    event ProviderVerificationSet(
        address indexed provider, bool verified, bytes32 profileHash, address by
    );

    error Soulbound(uint256 tokenId);
    error NotIssuer(uint256 courseId, address account);
    error VoucherExpired(uint256 deadline);
    error AlreadyCertified(address learner, uint256 courseId);
    error AlreadyRevoked(uint256 tokenId);
    error UnknownCertificate(uint256 tokenId);
    error ZeroRecordHash();
    /// @notice `learner` has no access to `courseId` in the market, so cannot be certified.
    error NoCourseAccess(uint256 courseId, address learner);
    /// @notice Course ids are below 2**64 (the token id packs one with an address and a
    /// generation).
    error InvalidCourseId(uint256 courseId);
    /// @notice Only the holder may remove its certificate.
    error NotHolder(uint256 tokenId, address account);
    /// @notice The certificate was removed by its holder.
    error CertificateIsRemoved(uint256 tokenId);
    /// @notice `tokenId` is not the current certificate of its learner and course (it was
    /// replaced by a later one).
    error NotCurrentCertificate(uint256 tokenId);
    /// @notice Reason 7 (corrected) is written by `reissue` only.
    error ReservedReason(uint8 reason);
    /// @notice A provider name that is empty, too long or not printable UTF-8.
    error InvalidProviderName();
    /// @notice A website domain that is not a lowercase host name.
    error InvalidDomain();
    /// @notice The provider has no record, or not the one the verifier reviewed.
    error ProfileMismatch(address provider, bytes32 expected, bytes32 actual);

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

    /// @notice Correct a certificate: revoke it as corrected (reason 7) unless already revoked,
    /// and issue the next one to the same learner for the same course, linked to it. Caller: an
    /// issuer of the course, as for `revoke`.
    function reissue(uint256 tokenId, bytes28 recordHash) external returns (uint256 newTokenId);

    /// @notice Remove (burn) a certificate the caller holds.
    function remove(uint256 tokenId) external;

    /// @notice Set the caller's public provider record; drops a verification.
    function setProviderProfile(string calldata name, string calldata domain) external;

    /// @notice Verify `provider`'s record, as reviewed (`profileHash`). Caller: VERIFIER_ROLE.
    function verifyProvider(address provider, bytes32 profileHash) external;

    /// @notice Withdraw the platform's verification of `provider`. Caller: VERIFIER_ROLE.
    function unverifyProvider(address provider) external;

    /// @notice `provider`'s public record (empty if it never set one).
    function providerRecord(address provider) external view returns (Provider memory);

    /// @notice Authorize (or stop authorizing) `issuer` to certify the caller's courses.
    function setIssuer(address issuer, bool allowed) external;

    /// @notice Whether `account` may issue and revoke certificates of `courseId`.
    function isIssuerFor(uint256 courseId, address account) external view returns (bool);

    /// @notice The facts of a certificate (also revoked or removed ones); reverts with
    /// UnknownCertificate if never issued.
    function verify(uint256 tokenId) external view returns (Certificate memory);

    /// @notice The current certificate of (`learner`, `courseId`): the live one if any, else
    /// the latest issued (revoked or removed), else the id the first issue will take.
    function tokenIdFor(address learner, uint256 courseId) external view returns (uint256);

    /// @notice The EIP-712 digest an issuer signs for a voucher.
    function voucherDigest(address learner, uint256 courseId, bytes28 recordHash, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice The CourseMarket whose courses this contract certifies.
    function market() external view returns (address);
}
