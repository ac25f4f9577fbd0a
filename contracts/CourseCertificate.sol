// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {CertificateRenderer} from "./CertificateRenderer.sol";
import {ICourseCertificate} from "./interfaces/ICourseCertificate.sol";
import {ICourseMarket} from "./interfaces/ICourseMarket.sol";
import {IERC5192} from "./interfaces/IERC5192.sol";
import {Text} from "./libraries/Text.sol";

/// @title CourseCertificate
/// @notice Soulbound (ERC-5192) course certificates with fully on-chain metadata; see
/// {ICourseCertificate}.
/// @dev Token id: `generation << 224 | courseId << 160 | uint160(learner)`. Per certificate one
/// slot besides ERC-721's owner and balance: `issuedAt` and `recordHash`. Revocations,
/// replacements and a pair's generation live in mappings written only when they happen.
contract CourseCertificate is ICourseCertificate, IERC5192, ERC721, AccessControl, EIP712 {
    /// @notice Role of the platform's minting keys: may issue and revoke certificates of any
    /// course.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");

    /// @notice Role of the platform's keys that verify providers' records.
    bytes32 public constant VERIFIER_ROLE = keccak256("VERIFIER_ROLE");

    /// @notice The revocation reason `reissue` writes.
    uint8 public constant REASON_CORRECTED = 7;
    /// @notice The longest provider name, in bytes.
    uint256 public constant MAX_PROVIDER_NAME_LENGTH = 64;

    /// @notice The EIP-712 type hash of a claim voucher.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address learner,uint256 courseId,bytes28 recordHash,uint256 deadline)"
    );

    /// @dev One slot per certificate.
    struct Record {
        uint32 issuedAt;
        bytes28 recordHash;
    }

    /// @dev One slot, written only on revocation.
    struct Revocation {
        uint32 revokedAt;
        uint8 reason;
    }

    ICourseMarket private immutable _market;
    CertificateRenderer private immutable _renderer;
    mapping(uint256 tokenId => Record) private _records;
    mapping(uint256 tokenId => Revocation) private _revocations;
    mapping(address provider => mapping(address issuer => bool)) private _issuers;
    mapping(uint256 pair => uint32) private _generations;
    mapping(uint256 tokenId => uint256) private _replacements;
    mapping(address provider => Provider) private _providerRecords;

    /// @param admin The default admin (grants ISSUER_ROLE).
    /// @param market_ The CourseMarket whose courses are certified.
    constructor(address admin, ICourseMarket market_)
        ERC721("Tuition Certificate", "TUCERT")
        EIP712("Tuition Certificate", "1")
    {
        _market = market_;
        // Deployed from here (its code is in this constructor's init code only): metadata
        // rendering would not fit within the 24 KB code-size limit next to the rest.
        _renderer = new CertificateRenderer();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------- issuing

    /// @inheritdoc ICourseCertificate
    /// @dev Reverts with UnknownCourse or InvalidCourseId (from the market) for unknown courses,
    /// ERC721InvalidReceiver for a zero learner and NoCourseAccess unless the learner holds
    /// access to the course in the market.
    /// @param learner The holder (one live or revoked certificate per learner and course:
    /// AlreadyCertified; after the holder removed a valid one, the next generation is issued).
    /// @param courseId The course (the caller must be its issuer: NotIssuer).
    /// @param recordHash First 28 bytes of the off-chain record's keccak-256 (ZeroRecordHash).
    /// @return tokenId The certificate (see `tokenIdFor`).
    function mint(address learner, uint256 courseId, bytes28 recordHash)
        external
        returns (uint256 tokenId)
    {
        if (!_isIssuer(_provider(courseId), msg.sender)) revert NotIssuer(courseId, msg.sender);
        return _issue(learner, courseId, recordHash, msg.sender);
    }

    /// @inheritdoc ICourseCertificate
    /// @dev A voucher cannot be replayed onto a live or revoked certificate of the pair (only after
    /// the learner itself removed a valid one); the signature must be canonical (low `s`), as
    /// ECDSA enforces. The caller must hold access to
    /// the course in the market when claiming (NoCourseAccess), whatever the voucher says.
    /// @param courseId The course.
    /// @param recordHash The record hash the voucher was signed for.
    /// @param deadline Last valid second of the voucher (VoucherExpired).
    /// @param signature 65-byte ECDSA signature of `voucherDigest(msg.sender, ...)` by an issuer
    /// of the course (NotIssuer).
    /// @return tokenId The minted certificate.
    function claim(uint256 courseId, bytes28 recordHash, uint256 deadline, bytes calldata signature)
        external
        returns (uint256 tokenId)
    {
        if (block.timestamp > deadline) revert VoucherExpired(deadline);
        address provider = _provider(courseId);
        address signer = ECDSA.recoverCalldata(
            _voucherDigest(msg.sender, courseId, recordHash, deadline), signature
        );
        if (!_isIssuer(provider, signer)) revert NotIssuer(courseId, signer);
        return _issue(msg.sender, courseId, recordHash, signer);
    }

    /// @inheritdoc ICourseCertificate
    /// @dev Reason codes: 1 issued in error, 2 academic misconduct, 3 course withdrawn, 4 learner
    /// request; others are issuer-defined. The certificate stays with its holder, marked revoked.
    /// @param tokenId The certificate (UnknownCertificate, AlreadyRevoked).
    /// @param reason The reason code.
    function revoke(uint256 tokenId, uint8 reason) external {
        if (reason == REASON_CORRECTED) revert ReservedReason(reason);
        _checkIssuerOf(tokenId);
        if (_revocations[tokenId].revokedAt != 0) revert AlreadyRevoked(tokenId);
        _revoke(tokenId, reason);
    }

    /// @inheritdoc ICourseCertificate
    /// @dev The learner must still hold access to the course (NoCourseAccess). A certificate the
    /// holder removed is not reissued (CertificateIsRemoved), nor one already replaced
    /// (NotCurrentCertificate).
    /// @param tokenId The certificate to correct (UnknownCertificate).
    /// @param recordHash The corrected record's hash (ZeroRecordHash).
    /// @return newTokenId The next generation's certificate.
    function reissue(uint256 tokenId, bytes28 recordHash) external returns (uint256 newTokenId) {
        _checkIssuerOf(tokenId);
        address learner = address(uint160(tokenId));
        uint256 courseId = _courseOf(tokenId);
        uint256 pair = _pair(learner, courseId);
        if (tokenId != _currentId(pair)) revert NotCurrentCertificate(tokenId);
        if (_ownerOf(tokenId) == address(0)) revert CertificateIsRemoved(tokenId);
        if (_revocations[tokenId].revokedAt == 0) _revoke(tokenId, REASON_CORRECTED);
        newTokenId = _nextGeneration(pair);
        _replacements[tokenId] = newTokenId;
        _mintRecord(learner, courseId, newTokenId, recordHash, msg.sender);
        emit CertificateReplaced(tokenId, newTokenId);
    }

    /// @inheritdoc ICourseCertificate
    /// @dev The record (and any revocation) stays: the certificate verifies as removed.
    /// @param tokenId A certificate the caller holds (NotHolder).
    function remove(uint256 tokenId) external {
        if (_ownerOf(tokenId) != msg.sender) revert NotHolder(tokenId, msg.sender);
        _burn(tokenId);
        emit CertificateRemoved(tokenId, msg.sender);
    }

    /// @inheritdoc ICourseCertificate
    /// @dev The caller acts as a provider: the authorization applies to every course whose
    /// provider is the caller.
    /// @param issuer The key to (de)authorize.
    /// @param allowed Whether it may issue and revoke certificates of the caller's courses.
    function setIssuer(address issuer, bool allowed) external {
        _issuers[msg.sender][issuer] = allowed;
        emit IssuerSet(msg.sender, issuer, allowed);
    }

    // ---------------------------------------------------------------- providers

    /// @inheritdoc ICourseCertificate
    /// @dev Drops the platform's verification (a verified provider renaming itself must be
    /// verified again).
    /// @param name 1..MAX_PROVIDER_NAME_LENGTH bytes of printable UTF-8 (InvalidProviderName).
    /// @param domain The provider's website host name, lowercase (InvalidDomain).
    function setProviderProfile(string calldata name, string calldata domain) external {
        uint256 length = bytes(name).length;
        (bool printable,) = Text.isPrintable(bytes(name));
        if (length == 0 || length > MAX_PROVIDER_NAME_LENGTH || !printable) {
            revert InvalidProviderName();
        }
        if (!Text.isDomain(bytes(domain))) revert InvalidDomain();
        Provider storage record = _providerRecords[msg.sender];
        bool wasVerified = record.verified;
        record.name = name;
        record.domain = domain;
        record.verified = false;
        record.verifiedAt = 0;
        record.verifiedBy = address(0);
        emit ProviderProfileSet(msg.sender, name, domain);
        if (wasVerified) {
            emit ProviderVerificationSet(msg.sender, false, _profileHash(record), msg.sender);
        }
    }

    /// @inheritdoc ICourseCertificate
    /// @dev `profileHash` binds the verification to the record that was reviewed: a provider
    /// changing its record in the meantime makes the call revert (ProfileMismatch).
    /// @param provider The provider.
    /// @param profileHash `keccak256(abi.encode(name, domain))` of the reviewed record.
    function verifyProvider(address provider, bytes32 profileHash)
        external
        onlyRole(VERIFIER_ROLE)
    {
        Provider storage record = _providerRecords[provider];
        bytes32 actual = bytes(record.name).length == 0 ? bytes32(0) : _profileHash(record);
        if (actual == bytes32(0) || actual != profileHash) {
            revert ProfileMismatch(provider, profileHash, actual);
        }
        record.verified = true;
        record.verifiedAt = uint32(block.timestamp);
        record.verifiedBy = msg.sender;
        emit ProviderVerificationSet(provider, true, profileHash, msg.sender);
    }

    /// @inheritdoc ICourseCertificate
    /// @param provider The provider (a no-op event if it was not verified).
    function unverifyProvider(address provider) external onlyRole(VERIFIER_ROLE) {
        Provider storage record = _providerRecords[provider];
        record.verified = false;
        record.verifiedAt = 0;
        record.verifiedBy = address(0);
        bytes32 hash = bytes(record.name).length == 0 ? bytes32(0) : _profileHash(record);
        emit ProviderVerificationSet(provider, false, hash, msg.sender);
    }

    /// @inheritdoc ICourseCertificate
    function providerRecord(address provider) external view returns (Provider memory) {
        return _providerRecords[provider];
    }

    // ---------------------------------------------------------------- soulbound

    /// @notice Approvals are meaningless for soulbound tokens: always reverts.
    /// @param tokenId The token.
    function approve(address, uint256 tokenId) public pure override {
        revert Soulbound(tokenId);
    }

    /// @notice Approvals are meaningless for soulbound tokens: always reverts (tokenId 0).
    function setApprovalForAll(address, bool) public pure override {
        revert Soulbound(0);
    }

    /// @inheritdoc IERC5192
    /// @dev Reverts with UnknownCertificate for tokens never issued or removed.
    function locked(uint256 tokenId) external view returns (bool) {
        if (_ownerOf(tokenId) == address(0)) revert UnknownCertificate(tokenId);
        return true;
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICourseCertificate
    function isIssuerFor(uint256 courseId, address account) external view returns (bool) {
        return _isIssuer(_provider(courseId), account);
    }

    /// @notice Whether `provider` authorized `issuer` for its courses.
    /// @param provider A course provider.
    /// @param issuer The account to check.
    /// @return True if authorized with `setIssuer`.
    function isProviderIssuer(address provider, address issuer) external view returns (bool) {
        return _issuers[provider][issuer];
    }

    /// @inheritdoc ICourseCertificate
    function verify(uint256 tokenId) public view returns (Certificate memory cert) {
        Record memory record = _records[tokenId];
        if (record.issuedAt == 0) revert UnknownCertificate(tokenId);
        Revocation memory revocation = _revocations[tokenId];
        uint256 courseId = _courseOf(tokenId);
        address issuer = _provider(courseId);
        cert = Certificate({
            holder: address(uint160(tokenId)),
            courseId: courseId,
            issuer: issuer,
            issuerVerified: _providerRecords[issuer].verified,
            issuedAt: record.issuedAt,
            recordHash: record.recordHash,
            revoked: revocation.revokedAt != 0,
            revokedAt: revocation.revokedAt,
            revokeReason: revocation.reason,
            removed: _ownerOf(tokenId) == address(0),
            replacedBy: _replacements[tokenId]
        });
    }

    /// @inheritdoc ICourseCertificate
    function tokenIdFor(address learner, uint256 courseId) external view returns (uint256) {
        return _currentId(_pair(learner, courseId));
    }

    /// @inheritdoc ICourseCertificate
    function voucherDigest(address learner, uint256 courseId, bytes28 recordHash, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _voucherDigest(learner, courseId, recordHash, deadline);
    }

    /// @inheritdoc ICourseCertificate
    function market() external view returns (address) {
        return address(_market);
    }

    /// @notice The contract that renders `tokenURI` (deployed by this one's constructor).
    /// @return Its address.
    function renderer() external view returns (address) {
        return address(_renderer);
    }

    /// @notice The certificate's metadata as a `data:application/json;base64,` URI with an SVG
    /// image, computed entirely on-chain.
    /// @dev Reverts with ERC721NonexistentToken for tokens never issued.
    /// @param tokenId The certificate.
    /// @return The data URI.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        Certificate memory cert = verify(tokenId);
        return _renderer.render(cert, _market.courseTitle(cert.courseId));
    }

    /// @notice ERC-165: ERC-721, ERC-721 Metadata, ERC-5192, AccessControl and
    /// ICourseCertificate.
    /// @param interfaceId The interface id.
    /// @return True if supported.
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControl)
        returns (bool)
    {
        return interfaceId == type(IERC5192).interfaceId
            || interfaceId == type(ICourseCertificate).interfaceId
            || ERC721.supportsInterface(interfaceId) || AccessControl.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Soulbound: mints and the holder's removal (`remove` burns) pass; transfers revert.
    function _update(address to, uint256 tokenId, address auth)
        internal
        override
        returns (address)
    {
        if (to != address(0) && _ownerOf(tokenId) != address(0)) revert Soulbound(tokenId);
        return super._update(to, tokenId, auth);
    }

    /// @dev Issues the pair's certificate unless it has a live or revoked one; after the holder
    /// removed a valid one, the next generation. `signer` is the minting account or voucher
    /// signer.
    function _issue(address learner, uint256 courseId, bytes28 recordHash, address signer)
        private
        returns (uint256 tokenId)
    {
        uint256 pair = _pair(learner, courseId);
        tokenId = _currentId(pair);
        if (_records[tokenId].issuedAt != 0) {
            // Checked here so the error is ours rather than ERC-721's.
            bool removedValid =
                _ownerOf(tokenId) == address(0) && _revocations[tokenId].revokedAt == 0;
            if (!removedValid) revert AlreadyCertified(learner, courseId);
            tokenId = _nextGeneration(pair);
        }
        _mintRecord(learner, courseId, tokenId, recordHash, signer);
    }

    /// @dev Writes the record and mints `tokenId` to `learner`.
    function _mintRecord(
        address learner,
        uint256 courseId,
        uint256 tokenId,
        bytes28 recordHash,
        address signer
    ) private {
        if (recordHash == bytes28(0)) revert ZeroRecordHash();
        if (learner == address(0)) revert ERC721InvalidReceiver(address(0));
        // Whatever the rail (on-chain purchase, card, grant): the market is the one answer.
        if (!_market.hasAccess(courseId, learner)) revert NoCourseAccess(courseId, learner);
        _records[tokenId] = Record({issuedAt: uint32(block.timestamp), recordHash: recordHash});
        _mint(learner, tokenId);
        emit Locked(tokenId);
        emit CertificateMinted(tokenId, learner, courseId, signer, recordHash);
    }

    /// @dev Records the revocation of `tokenId`.
    function _revoke(uint256 tokenId, uint8 reason) private {
        _revocations[tokenId] = Revocation({revokedAt: uint32(block.timestamp), reason: reason});
        emit CertificateRevoked(tokenId, reason, msg.sender);
    }

    /// @dev Reverts unless `tokenId` was issued and the caller is an issuer of its course.
    function _checkIssuerOf(uint256 tokenId) private view {
        if (_records[tokenId].issuedAt == 0) revert UnknownCertificate(tokenId);
        uint256 courseId = _courseOf(tokenId);
        if (!_isIssuer(_provider(courseId), msg.sender)) revert NotIssuer(courseId, msg.sender);
    }

    /// @dev The pair's next generation (stored) and its token id.
    function _nextGeneration(uint256 pair) private returns (uint256) {
        uint32 generation = _generations[pair] + 1;
        _generations[pair] = generation;
        return (uint256(generation) << 224) | pair;
    }

    /// @dev The token id of the pair's current generation. A pair whose first certificate was
    /// never issued has no later generation: the first mint reads one slot, which it then
    /// writes (no extra cold read for the generation).
    function _currentId(uint256 pair) private view returns (uint256) {
        if (_records[pair].issuedAt == 0) return pair;
        return (uint256(_generations[pair]) << 224) | pair;
    }

    /// @dev The course of a token id (bits 160..223).
    function _courseOf(uint256 tokenId) private pure returns (uint256) {
        return uint64(tokenId >> 160);
    }

    /// @dev The provider record's hash, as `verifyProvider` takes it.
    function _profileHash(Provider storage record) private view returns (bytes32) {
        return keccak256(abi.encode(record.name, record.domain));
    }

    /// @dev The course's provider; reverts with the market's UnknownCourse for unknown ids.
    function _provider(uint256 courseId) private view returns (address) {
        return _market.courseProvider(courseId);
    }

    /// @dev Whether `account` holds ISSUER_ROLE or was authorized by `provider`.
    function _isIssuer(address provider, address account) private view returns (bool) {
        return hasRole(ISSUER_ROLE, account) || _issuers[provider][account];
    }

    /// @dev `courseId << 160 | uint160(learner)`, generation 0's token id. Course ids are
    /// sequential and far below 2**64; larger ones would collide with the generation bits, so
    /// they revert (InvalidCourseId).
    function _pair(address learner, uint256 courseId) private pure returns (uint256) {
        if (courseId > type(uint64).max) revert InvalidCourseId(courseId);
        return (courseId << 160) | uint160(learner);
    }

    /// @dev The EIP-712 digest of a voucher in this contract's domain.
    function _voucherDigest(
        address learner,
        uint256 courseId,
        bytes28 recordHash,
        uint256 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(VOUCHER_TYPEHASH, learner, courseId, recordHash, deadline))
        );
    }
}
