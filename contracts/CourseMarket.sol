// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";

import {ICourseMarket} from "./interfaces/ICourseMarket.sol";
import {Text} from "./libraries/Text.sol";

/// @title CourseMarket
/// @notice Catalog, prices, purchases, refunds and payouts of Tuition courses; see {ICourseMarket}.
/// @dev Storage is laid out for the purchase hot path. A native-coin purchase touches four slots
/// (config, course, access record, escrow bucket), an ERC-20 purchase five (plus the price):
/// - The config slot packs treasury, fee, pause flag and a bitmap of allowlisted ERC-20 tokens.
///   Each allowlisted token gets a permanent index (at most 64 tokens ever), copied into its
///   price slots, so a purchase checks the allowlist without reading a slot of its own.
/// - The course slot holds a 32-bit provider id instead of the provider's address, which leaves
///   room for the native-coin price: native purchases read no separate price slot. Provider
///   addresses are immutable, so the id ↔ address mapping never changes.
///
/// Escrow ring: per (provider, token) 32 buckets indexed by `releaseDay % 32`, where
/// `releaseDay = refundDeadline / 1 days + 1` is the first UTC day that starts after the refund
/// deadline. Refund deadlines are at most `MAX_REFUND_WINDOW` (30 days) ahead, so every purchase
/// made today has a release day in `[today + 1, today + 31]`; a slot that holds a different day
/// than the one being written therefore holds a day at least 32 days earlier, which has matured
/// and is released before the slot is reused. A bucket matures once `day <= today`, i.e.
/// strictly after the deadline of every purchase in it, while a refund is accepted up to and
/// including its deadline second: a refundable purchase is always still in its bucket, whatever
/// the provider has withdrawn. A bitmask per ring marks the buckets holding unreleased money.
///
/// Money invariant, per token: this contract's balance == Σ credited balances + Σ bucket
/// (net + fee) over all rings.
contract CourseMarket is ICourseMarket, AccessControlDefaultAdminRules, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using TransientSlot for *;

    /// @notice Role that records card payments and grants (`grantAccess`, `revokeAccess`) and
    /// may refund any purchase.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice Role that may pause and unpause purchases and grants.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @notice The longest refund window a course may have.
    uint32 public constant MAX_REFUND_WINDOW = 30 days;
    /// @notice The highest platform fee, in basis points (20 %).
    uint16 public constant MAX_FEE_BPS = 2_000;
    /// @notice The longest course title, in bytes.
    uint256 public constant MAX_TITLE_LENGTH = 100;
    /// @notice How many distinct ERC-20 tokens can ever be allowlisted.
    uint256 public constant MAX_TOKENS = 64;

    uint256 private constant _BPS = 10_000;
    uint256 private constant _RING_SIZE = 32;
    /// @dev The largest course id: ids share a 256-bit storage key with a 160-bit address.
    uint256 private constant _MAX_COURSE_ID = type(uint96).max;

    /// @dev One slot, read once per purchase. The pause flag is hand-rolled instead of
    /// OpenZeppelin's Pausable, which keeps it in a slot of its own: a second cold read
    /// (2,100 gas) on every purchase. Bit i of `allowedTokens` is the allowlist flag of the
    /// token with index i.
    struct Config {
        address treasury;
        uint16 feeBps;
        bool paused;
        uint64 allowedTokens;
    }

    /// @dev One slot. `nativePrice`/`nativeAccepted` are the course's price in the native coin,
    /// laid out like `Price` once shifted right by 72 bits.
    struct CourseRecord {
        uint32 providerId;
        uint32 refundWindow;
        bool listed;
        uint96 nativePrice;
        bool nativeAccepted;
    }

    /// @dev One slot per (course, ERC-20 token). `accepted` distinguishes "free" (price 0) from
    /// "not for sale"; `tokenIndex` is the token's bit in `Config.allowedTokens`.
    struct Price {
        uint96 price;
        bool accepted;
        uint8 tokenIndex;
    }

    /// @dev One slot: money of the purchases whose release day is `day`.
    struct Bucket {
        uint32 day;
        uint112 net;
        uint112 fee;
    }

    /// @dev `pending` has bit i set while `buckets[i]` may hold unreleased money.
    struct Ring {
        Bucket[32] buckets;
        uint256 pending;
    }

    // Bit offsets of the packed slots, for the hot path's single reads and writes.
    uint256 private constant _CONFIG_FEE = 160;
    uint256 private constant _CONFIG_PAUSED = 176;
    uint256 private constant _CONFIG_TOKENS = 184;
    uint256 private constant _COURSE_WINDOW = 32;
    uint256 private constant _COURSE_LISTED = 64;
    uint256 private constant _COURSE_NATIVE_PRICE = 72;
    uint256 private constant _PRICE_ACCEPTED = 96;
    uint256 private constant _PRICE_TOKEN_INDEX = 104;

    Config private _config;
    uint256 private _courseCount;
    uint256 private _providerCount;
    uint256 private _tokenCount;
    mapping(uint256 courseId => CourseRecord) private _courses;
    mapping(uint256 courseId => string) private _titles;
    mapping(uint256 providerId => address) private _providers;
    mapping(address provider => uint256) private _providerIds;
    /// @dev Keyed by `_key(courseId, token)`.
    mapping(uint256 key => Price) private _prices;
    /// @dev Keyed by `_key(courseId, learner)`.
    mapping(uint256 key => Access) private _access;
    /// @dev Keyed by `_key(providerId, token)`.
    mapping(uint256 key => Ring) private _rings;
    mapping(address payee => mapping(address token => uint256)) private _credited;
    /// @dev Fees released or paid at once and not withdrawn yet, per token: they belong to the
    /// treasury current when they are withdrawn, never to an address chosen by `release`'s caller.
    mapping(address token => uint256) private _fees;
    /// @dev Token index + 1 (0: never allowlisted).
    mapping(address token => uint256) private _tokenSlots;
    mapping(address provider => mapping(address delegate => bool)) private _delegates;

    /// @notice Purchases and grants were stopped by `account`.
    /// @param account The guardian that paused.
    event Paused(address account);
    /// @notice Purchases and grants were resumed by `account`.
    /// @param account The guardian that unpaused.
    event Unpaused(address account);

    /// @notice The operation is not possible while paused.
    error EnforcedPause();
    /// @notice The operation needs the contract to be paused.
    error ExpectedPause();
    /// @notice A course title is longer than `MAX_TITLE_LENGTH` bytes.
    /// @param length The title's length in bytes.
    error TitleTooLong(uint256 length);
    /// @notice `MAX_TOKENS` distinct ERC-20 tokens were allowlisted already.
    error TooManyTokens();

    /// @dev Reverts unless the contract is running.
    modifier whenNotPaused() {
        if (_config.paused) revert EnforcedPause();
        _;
    }

    /// @param admin The default admin (fee, treasury, token allowlist, roles).
    /// @param treasury_ The address platform fees are credited to.
    /// @param feeBps_ The initial platform fee in basis points.
    /// @param initialAdminDelay Seconds an admin transfer must wait before it can be accepted.
    constructor(address admin, address treasury_, uint16 feeBps_, uint48 initialAdminDelay)
        AccessControlDefaultAdminRules(initialAdminDelay, admin)
    {
        if (treasury_ == address(0)) revert ZeroAddress();
        if (feeBps_ > MAX_FEE_BPS) revert FeeTooHigh(feeBps_, MAX_FEE_BPS);
        _config = Config({treasury: treasury_, feeBps: feeBps_, paused: false, allowedTokens: 0});
        emit TreasuryChanged(address(0), treasury_);
        emit FeeChanged(0, feeBps_);
    }

    // ---------------------------------------------------------------- catalog

    /// @inheritdoc ICourseMarket
    /// @dev Permissionless: the caller becomes the provider. The course is listed at once but
    /// cannot be bought before a price is set.
    /// @param title Shown in certificates; 1..MAX_TITLE_LENGTH bytes (EmptyTitle, TitleTooLong) of
    /// printable UTF-8 (InvalidTitle), so every certificate's metadata parses.
    /// @param refundWindow Seconds; at most MAX_REFUND_WINDOW (RefundWindowTooLong).
    /// @return courseId Sequential id, starting at 1.
    function createCourse(string calldata title, uint32 refundWindow)
        external
        returns (uint256 courseId)
    {
        uint256 length = bytes(title).length;
        if (length == 0) revert EmptyTitle();
        if (length > MAX_TITLE_LENGTH) revert TitleTooLong(length);
        (bool printable, uint256 offset) = Text.isPrintable(bytes(title));
        if (!printable) revert InvalidTitle(offset);
        _checkRefundWindow(refundWindow);
        uint256 providerId = _providerIds[msg.sender];
        if (providerId == 0) {
            providerId = ++_providerCount;
            _providerIds[msg.sender] = providerId;
            _providers[providerId] = msg.sender;
        }
        courseId = ++_courseCount;
        _courses[courseId] = CourseRecord({
            providerId: SafeCast.toUint32(providerId),
            refundWindow: refundWindow,
            listed: true,
            nativePrice: 0,
            nativeAccepted: false
        });
        _titles[courseId] = title;
        emit CourseCreated(courseId, msg.sender, refundWindow, title);
    }

    /// @inheritdoc ICourseMarket
    /// @param courseId The course (UnknownCourse; caller must manage it: NotCourseManager).
    /// @param token `address(0)` for the native coin, else an allowlisted ERC-20 (TokenNotAllowed).
    /// @param price In the token's smallest unit; 0 is free; at most 2**96 - 1 (PriceTooHigh).
    function setPrice(uint256 courseId, address token, uint256 price) external {
        CourseRecord storage c = _requireManager(courseId);
        if (price > type(uint96).max) revert PriceTooHigh(price, type(uint96).max);
        if (token == address(0)) {
            c.nativePrice = uint96(price);
            c.nativeAccepted = true;
        } else {
            uint256 slot = _tokenSlots[token];
            if (slot == 0 || !_isAllowed(_config.allowedTokens, slot - 1)) {
                revert TokenNotAllowed(token);
            }
            _prices[_key(courseId, token)] =
                Price({price: uint96(price), accepted: true, tokenIndex: uint8(slot - 1)});
        }
        emit PriceSet(courseId, token, price, true);
    }

    /// @inheritdoc ICourseMarket
    /// @param courseId The course (caller must manage it).
    /// @param token The token no longer accepted (`address(0)`: native coin).
    function removePrice(uint256 courseId, address token) external {
        CourseRecord storage c = _requireManager(courseId);
        if (token == address(0)) {
            c.nativePrice = 0;
            c.nativeAccepted = false;
        } else {
            delete _prices[_key(courseId, token)];
        }
        emit PriceSet(courseId, token, 0, false);
    }

    /// @inheritdoc ICourseMarket
    /// @param courseId The course (caller must manage it).
    /// @param listed False stops purchases; existing access stays.
    function setListed(uint256 courseId, bool listed) external {
        CourseRecord storage c = _requireManager(courseId);
        c.listed = listed;
        emit CourseUpdated(courseId, listed, c.refundWindow);
    }

    /// @inheritdoc ICourseMarket
    /// @param courseId The course (caller must manage it).
    /// @param refundWindow Seconds, at most MAX_REFUND_WINDOW; applies to later purchases.
    function setRefundWindow(uint256 courseId, uint32 refundWindow) external {
        CourseRecord storage c = _requireManager(courseId);
        _checkRefundWindow(refundWindow);
        c.refundWindow = refundWindow;
        emit CourseUpdated(courseId, c.listed, refundWindow);
    }

    /// @inheritdoc ICourseMarket
    /// @param delegate The account (ZeroAddress for 0).
    /// @param allowed Whether it may manage the caller's courses.
    function setDelegate(address delegate, bool allowed) external {
        if (delegate == address(0)) revert ZeroAddress();
        _delegates[msg.sender][delegate] = allowed;
        emit DelegateSet(msg.sender, delegate, allowed);
    }

    // ---------------------------------------------------------------- purchases

    /// @inheritdoc ICourseMarket
    /// @dev Re-entrancy: reverts when entered from any `nonReentrant` function, and makes its
    /// external calls only after every effect (checks-effects-interactions). The excess refund
    /// holds the guard, so the caller cannot re-enter from its `receive`. The ERC-20 pull does
    /// not (two transient writes, 200 gas on the hot path): the token is allowlisted, the state
    /// is final before it is called, and any re-entry that moves this contract's balance of the
    /// token (a nested purchase or withdrawal in it) breaks the balance-delta check, which
    /// reverts the whole purchase.
    /// @param courseId The course to buy.
    /// @param token `address(0)` for the native coin, or an ERC-20 the course accepts.
    /// @param maxAmount The most the caller agrees to pay (PriceAboveMax).
    /// @param recipient Who gets access; `address(0)` for the caller.
    /// @param orderRef The backend's order reference, or zero; echoed in CoursePurchased.
    /// @param quotedWindow The refund window the buyer was quoted (RefundWindowBelowQuote).
    function purchase(
        uint256 courseId,
        address token,
        uint256 maxAmount,
        address recipient,
        bytes32 orderRef,
        uint32 quotedWindow
    ) external payable {
        if (_reentrancyGuardEntered()) revert ReentrancyGuardReentrantCall();
        if (token == address(0)) {
            uint256 price =
                _purchase(courseId, token, maxAmount, recipient, orderRef, quotedWindow);
            if (msg.value < price) revert IncorrectPayment(price, msg.value);
            if (msg.value > price) {
                _setGuard(true);
                // Cannot underflow: msg.value > price was just checked.
                unchecked {
                    _sendNative(msg.sender, msg.value - price);
                }
                _setGuard(false);
            }
        } else {
            if (msg.value != 0) revert IncorrectPayment(0, msg.value);
            uint256 price =
                _purchase(courseId, token, maxAmount, recipient, orderRef, quotedWindow);
            if (price != 0) _pull(token, price);
        }
    }

    /// @inheritdoc ICourseMarket
    /// @dev Reverts with TokenNotAllowed for the native coin. When the permit call fails (already
    /// used, for instance front-run from the mempool) the purchase goes on if the allowance
    /// covers the price; otherwise the permit's own error is re-thrown.
    /// @param courseId The course to buy.
    /// @param token An ERC-20 with EIP-2612 permit that the course accepts.
    /// @param maxAmount The most the caller agrees to pay; also the permit's value.
    /// @param recipient Who gets access; `address(0)` for the caller.
    /// @param orderRef The backend's order reference, or zero.
    /// @param quotedWindow The refund window the buyer was quoted (RefundWindowBelowQuote).
    /// @param deadline The permit's deadline.
    /// @param v The permit signature's recovery id.
    /// @param r The permit signature's r.
    /// @param s The permit signature's s.
    function purchaseWithPermit(
        uint256 courseId,
        address token,
        uint256 maxAmount,
        address recipient,
        bytes32 orderRef,
        uint32 quotedWindow,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        if (token == address(0)) revert TokenNotAllowed(token);
        uint256 price = _purchase(courseId, token, maxAmount, recipient, orderRef, quotedWindow);
        try IERC20Permit(token).permit(msg.sender, address(this), maxAmount, deadline, v, r, s) {}
        catch (bytes memory reason) {
            if (IERC20(token).allowance(msg.sender, address(this)) < price) {
                assembly ("memory-safe") {
                    revert(add(reason, 0x20), mload(reason))
                }
            }
        }
        if (price != 0) _pull(token, price);
    }

    /// @inheritdoc ICourseMarket
    /// @dev Purchases with a zero refund window or a zero price are not refundable
    /// (`NotRefundable`). A refund is accepted up to and including the deadline second. The
    /// money comes out of the purchase's escrow bucket, which cannot have been released yet, so a
    /// refund never depends on what the provider has withdrawn. Works while paused.
    /// @param courseId The course.
    /// @param learner The recipient of the purchase (who loses access).
    /// @param payer The buyer of the purchase (who is credited), from CoursePurchased.
    /// @param token The purchase's token, from CoursePurchased.
    /// @param amount The purchase's amount (fee included), from CoursePurchased.
    /// @param fee The purchase's fee, from CoursePurchased.
    function refund(
        uint256 courseId,
        address learner,
        address payer,
        address token,
        uint256 amount,
        uint256 fee
    ) external nonReentrant {
        CourseRecord storage c = _requireCourse(courseId);
        uint256 providerId = c.providerId;
        address provider = _providers[providerId];
        if (
            msg.sender != provider && !_delegates[provider][msg.sender]
                && !hasRole(OPERATOR_ROLE, msg.sender)
        ) revert NotCourseManager(courseId, msg.sender);

        uint256 key = _key(courseId, learner);
        Access storage record = _access[key];
        uint256 deadline = record.refundDeadline;
        if (record.source != AccessSource.Purchase || deadline == 0) {
            revert NotRefundable(courseId, learner);
        }
        if (block.timestamp > deadline) revert RefundWindowClosed(courseId, learner, deadline);
        if (record.digest != _digest(payer, token, amount, fee)) {
            revert PurchaseMismatch(courseId, learner);
        }
        delete _access[key];

        uint256 day = _releaseDay(deadline);
        Bucket storage bucket = _rings[_key(providerId, token)].buckets[day % _RING_SIZE];
        // The digest matched, so amount >= fee and the bucket of `day` holds this purchase: the
        // checked subtractions can only fail if that reasoning is wrong.
        bucket.net -= SafeCast.toUint112(amount - fee);
        bucket.fee -= SafeCast.toUint112(fee);
        _credited[payer][token] += amount;
        emit Refunded(courseId, learner, payer, token, amount, msg.sender);
    }

    /// @inheritdoc ICourseMarket
    /// @dev Reverts with NotOperatorGranted if `source` is not Card or Grant, ZeroAddress for a
    /// zero learner. The record's refund deadline is 0 and its digest the first 21 bytes of
    /// `ref`. Works for delisted courses (support cases).
    /// @param courseId The course (UnknownCourse).
    /// @param learner Who gets access (AlreadyHasAccess if it has some).
    /// @param source Card or Grant.
    /// @param ref The backend's payment or grant reference.
    function grantAccess(uint256 courseId, address learner, AccessSource source, bytes32 ref)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
    {
        _requireCourse(courseId);
        if (learner == address(0)) revert ZeroAddress();
        if (source != AccessSource.Card && source != AccessSource.Grant) {
            revert NotOperatorGranted(courseId, learner);
        }
        Access storage record = _access[_key(courseId, learner)];
        if (record.source != AccessSource.None) revert AlreadyHasAccess(courseId, learner);
        _storeAccess(record, source, 0, bytes21(ref));
        emit AccessGranted(courseId, learner, source, ref);
    }

    /// @inheritdoc ICourseMarket
    /// @dev Works while paused. On-chain purchases can only be undone with `refund`.
    /// @param courseId The course.
    /// @param learner Whose Card or Grant access is revoked (NotOperatorGranted otherwise).
    /// @param ref The backend's reference of the reason (refund, chargeback).
    function revokeAccess(uint256 courseId, address learner, bytes32 ref)
        external
        onlyRole(OPERATOR_ROLE)
    {
        uint256 key = _courseKey(courseId, learner);
        AccessSource source = _access[key].source;
        if (source != AccessSource.Card && source != AccessSource.Grant) {
            revert NotOperatorGranted(courseId, learner);
        }
        delete _access[key];
        emit AccessRevoked(courseId, learner, source, ref);
    }

    // ---------------------------------------------------------------- money

    /// @inheritdoc ICourseMarket
    /// @dev Fees go to the treasury's fees (`feesOf`), which the treasury current at withdrawal
    /// time collects: who calls this, and when, changes nothing about who gets them. Works while
    /// paused.
    /// @param provider Whose ring is released.
    /// @param token The ring's token (`address(0)`: native coin).
    function release(address provider, address token) external nonReentrant {
        _release(provider, token);
    }

    /// @inheritdoc ICourseMarket
    /// @dev Works while paused. Reverts with NothingToWithdraw when there is nothing, and with
    /// NativeTransferFailed if the caller does not accept the native coin (which affects only
    /// the caller: every balance is pulled by its own payee).
    /// @param token The token to withdraw (`address(0)`: native coin).
    /// @return amount What was paid out.
    function withdraw(address token) external nonReentrant returns (uint256 amount) {
        _release(msg.sender, token);
        amount = _credited[msg.sender][token];
        if (amount != 0) delete _credited[msg.sender][token];
        if (msg.sender == _config.treasury) {
            uint256 fees = _fees[token];
            if (fees != 0) {
                delete _fees[token];
                amount += fees;
            }
        }
        if (amount == 0) revert NothingToWithdraw(msg.sender, token);
        emit Withdrawn(msg.sender, token, amount);
        if (token == address(0)) {
            _sendNative(msg.sender, amount);
        } else {
            IERC20(token).safeTransfer(msg.sender, amount);
        }
    }

    // ---------------------------------------------------------------- admin

    /// @inheritdoc ICourseMarket
    /// @dev Applies to purchases made from now on; escrowed purchases keep the fee they paid.
    /// @param bps The new fee in basis points (FeeTooHigh above MAX_FEE_BPS).
    function setFee(uint16 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (bps > MAX_FEE_BPS) revert FeeTooHigh(bps, MAX_FEE_BPS);
        uint16 previous = _config.feeBps;
        _config.feeBps = bps;
        emit FeeChanged(previous, bps);
    }

    /// @inheritdoc ICourseMarket
    /// @dev Every fee not withdrawn yet, released or still in escrow, goes to the new treasury:
    /// fees are never credited to a treasury address, so the old key cannot keep them by calling
    /// `release` first.
    /// @param treasury_ The new treasury (ZeroAddress for 0).
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        address previous = _config.treasury;
        _config.treasury = treasury_;
        emit TreasuryChanged(previous, treasury_);
    }

    /// @inheritdoc ICourseMarket
    /// @dev The native coin (`address(0)`) is always accepted and cannot be listed (ZeroAddress).
    /// Removing a token stops purchases in it at once; refunds and withdrawals in it keep
    /// working, and allowing it again restores its existing prices. At most `MAX_TOKENS`
    /// distinct tokens can ever be allowed (TooManyTokens).
    /// @param token The ERC-20.
    /// @param allowed Whether it may be priced and paid with.
    function setTokenAllowed(address token, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (token == address(0)) revert ZeroAddress();
        uint256 slot = _tokenSlots[token];
        if (slot == 0 && allowed) {
            if (_tokenCount == MAX_TOKENS) revert TooManyTokens();
            slot = ++_tokenCount;
            _tokenSlots[token] = slot;
        }
        if (slot != 0) {
            // Fits: slot <= MAX_TOKENS (64), so the bit index is below 64.
            uint64 mask = uint64(1 << (slot - 1));
            uint64 bits = _config.allowedTokens;
            _config.allowedTokens = allowed ? bits | mask : bits & ~mask;
        }
        emit TokenAllowed(token, allowed);
    }

    /// @inheritdoc ICourseMarket
    function pause() external onlyRole(GUARDIAN_ROLE) {
        if (_config.paused) revert EnforcedPause();
        _config.paused = true;
        emit Paused(msg.sender);
    }

    /// @inheritdoc ICourseMarket
    function unpause() external onlyRole(GUARDIAN_ROLE) {
        if (!_config.paused) revert ExpectedPause();
        _config.paused = false;
        emit Unpaused(msg.sender);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICourseMarket
    function hasAccess(uint256 courseId, address learner) external view returns (bool) {
        return _access[_courseKey(courseId, learner)].source != AccessSource.None;
    }

    /// @inheritdoc ICourseMarket
    function accessOf(uint256 courseId, address learner) external view returns (Access memory) {
        return _access[_courseKey(courseId, learner)];
    }

    /// @inheritdoc ICourseMarket
    function purchaseDigest(address payer, address token, uint256 amount, uint256 fee)
        external
        pure
        returns (bytes21)
    {
        return _digest(payer, token, amount, fee);
    }

    /// @inheritdoc ICourseMarket
    function course(uint256 courseId) external view returns (Course memory) {
        CourseRecord storage c = _requireCourse(courseId);
        return Course({
            provider: _providers[c.providerId],
            refundWindow: c.refundWindow,
            listed: c.listed
        });
    }

    /// @inheritdoc ICourseMarket
    function courseProvider(uint256 courseId) external view returns (address) {
        return _providers[_requireCourse(courseId).providerId];
    }

    /// @inheritdoc ICourseMarket
    function courseTitle(uint256 courseId) external view returns (string memory) {
        _requireCourse(courseId);
        return _titles[courseId];
    }

    /// @inheritdoc ICourseMarket
    function courseCount() external view returns (uint256) {
        return _courseCount;
    }

    /// @inheritdoc ICourseMarket
    /// @dev `(0, false)` for unknown courses.
    function priceOf(uint256 courseId, address token)
        external
        view
        returns (uint256 price, bool accepted)
    {
        if (token == address(0)) {
            if (courseId > _MAX_COURSE_ID) revert InvalidCourseId(courseId);
            CourseRecord storage c = _courses[courseId];
            return (c.nativePrice, c.nativeAccepted);
        }
        Price storage p = _prices[_courseKey(courseId, token)];
        return (p.price, p.accepted);
    }

    /// @inheritdoc ICourseMarket
    function isDelegate(address provider, address delegate) external view returns (bool) {
        return _delegates[provider][delegate];
    }

    /// @inheritdoc ICourseMarket
    /// @dev True for the native coin (`address(0)`).
    function isTokenAllowed(address token) external view returns (bool) {
        if (token == address(0)) return true;
        uint256 slot = _tokenSlots[token];
        return slot != 0 && _isAllowed(_config.allowedTokens, slot - 1);
    }

    /// @inheritdoc ICourseMarket
    /// @dev Exactly what `withdraw(token)` called by `payee` would pay now: its credited balance
    /// plus the matured net of its own ring, plus that ring's matured fees if `payee` is the
    /// treasury. Matured fees in other providers' rings reach the treasury through `release`.
    function withdrawableOf(address payee, address token) external view returns (uint256) {
        (uint256 net, uint256 fee) = releasableOf(payee, token);
        uint256 amount = _credited[payee][token] + net;
        if (payee == _config.treasury) amount += fee + _fees[token];
        return amount;
    }

    /// @notice Fees released (or paid at once) and not withdrawn yet: the treasury current when
    /// `withdraw` is called gets them, whoever released them and whenever.
    /// @param token The token (`address(0)`: native coin).
    /// @return The fees waiting for the treasury.
    function feesOf(address token) external view returns (uint256) {
        return _fees[token];
    }

    /// @inheritdoc ICourseMarket
    /// @dev Only buckets whose refund windows are still open; see `releasableOf` for matured
    /// buckets not yet released.
    function escrowOf(address provider, address token)
        external
        view
        returns (uint256 net, uint256 fee)
    {
        return _sumRing(provider, token, false);
    }

    /// @notice What `release(provider, token)` would move to withdrawable balances now.
    /// @param provider The ring's provider.
    /// @param token The ring's token (`address(0)`: native coin).
    /// @return net The provider's matured, unreleased proceeds.
    /// @return fee The treasury's matured, unreleased fees.
    function releasableOf(address provider, address token)
        public
        view
        returns (uint256 net, uint256 fee)
    {
        return _sumRing(provider, token, true);
    }

    /// @notice The balance credited to `payee` in `token`, without matured escrow.
    /// @param payee The account.
    /// @param token The token (`address(0)`: native coin).
    /// @return The credited amount.
    function creditedOf(address payee, address token) external view returns (uint256) {
        return _credited[payee][token];
    }

    /// @inheritdoc ICourseMarket
    function feeBps() external view returns (uint16) {
        return _config.feeBps;
    }

    /// @inheritdoc ICourseMarket
    function treasury() external view returns (address) {
        return _config.treasury;
    }

    /// @notice Whether purchases and grants are stopped.
    /// @return True while paused.
    function paused() external view returns (bool) {
        return _config.paused;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Checks a purchase, writes the access record, books the money and emits
    /// CoursePurchased; returns the price. The caller collects the payment.
    function _purchase(
        uint256 courseId,
        address token,
        uint256 maxAmount,
        address recipient,
        bytes32 orderRef,
        uint32 quotedWindow
    ) private returns (uint256 price) {
        uint256 fee;
        uint256 deadline;
        uint256 providerId;
        (price, fee, deadline, providerId) = _quote(courseId, token, maxAmount, quotedWindow);
        if (recipient == address(0)) recipient = msg.sender;
        {
            Access storage record = _access[_key(courseId, recipient)];
            if (record.source != AccessSource.None) revert AlreadyHasAccess(courseId, recipient);
            _storeAccess(
                record, AccessSource.Purchase, deadline, _digest(msg.sender, token, price, fee)
            );
        }
        if (price != 0) _book(providerId, token, price, fee, deadline);
        emit CoursePurchased(courseId, msg.sender, recipient, token, price, fee, orderRef);
    }

    /// @dev The checks of a purchase made now, reading each packed slot once as a word (config,
    /// course, and for ERC-20 the price). Returns the price, the fee, the refund deadline (0: not
    /// refundable) and the course's provider id. The course's refund window must
    /// be at least `quotedWindow` (RefundWindowBelowQuote), whatever the price.
    function _quote(uint256 courseId, address token, uint256 maxAmount, uint32 quotedWindow)
        private
        view
        returns (uint256 price, uint256 fee, uint256 deadline, uint256 providerId)
    {
        if (courseId > _MAX_COURSE_ID) revert InvalidCourseId(courseId);
        uint256 config;
        uint256 courseWord;
        CourseRecord storage c = _courses[courseId];
        assembly ("memory-safe") {
            config := sload(_config.slot)
            courseWord := sload(c.slot)
        }
        if ((config >> _CONFIG_PAUSED) & 0xff != 0) revert EnforcedPause();
        if (uint32(courseWord) == 0) revert UnknownCourse(courseId);
        if ((courseWord >> _COURSE_LISTED) & 0xff == 0) revert CourseNotListed(courseId);
        uint256 priceWord;
        if (token == address(0)) {
            priceWord = courseWord >> _COURSE_NATIVE_PRICE;
            if ((priceWord >> _PRICE_ACCEPTED) & 0xff == 0) {
                revert TokenNotAccepted(courseId, token);
            }
        } else {
            Price storage p = _prices[_key(courseId, token)];
            assembly ("memory-safe") {
                priceWord := sload(p.slot)
            }
            if ((priceWord >> _PRICE_ACCEPTED) & 0xff == 0) {
                revert TokenNotAccepted(courseId, token);
            }
            if ((config >> (_CONFIG_TOKENS + ((priceWord >> _PRICE_TOKEN_INDEX) & 0xff))) & 1 == 0)
            {
                revert TokenNotAllowed(token);
            }
        }
        price = uint96(priceWord);
        if (price > maxAmount) revert PriceAboveMax(price, maxAmount);
        uint32 window = uint32(courseWord >> _COURSE_WINDOW);
        if (window < quotedWindow) revert RefundWindowBelowQuote(courseId, window, quotedWindow);

        if (price != 0) {
            // Cannot overflow: price < 2**96 and feeBps < 2**16.
            unchecked {
                fee = price * uint16(config >> _CONFIG_FEE) / _BPS;
            }
            if (window != 0) deadline = block.timestamp + window;
        }
        providerId = uint32(courseWord);
    }

    /// @dev Books a paid purchase: adds its money to the escrow bucket of its release day, or
    /// credits the provider and the treasury's fees at once when it cannot be refunded (zero
    /// refund window). One read and one write of the bucket on the common path.
    function _book(
        uint256 providerId,
        address token,
        uint256 price,
        uint256 fee,
        uint256 deadline
    ) private {
        uint256 net;
        // Cannot underflow: fee <= price because feeBps <= MAX_FEE_BPS < _BPS.
        unchecked {
            net = price - fee;
        }
        if (deadline == 0) return _payAtOnce(providerId, token, net, fee);
        uint256 day = _releaseDay(deadline);
        Ring storage ring = _rings[_key(providerId, token)];
        Bucket storage bucket = ring.buckets[day % _RING_SIZE];
        uint256 current;
        assembly ("memory-safe") {
            current := sload(bucket.slot)
        }
        if (uint32(current) == day) {
            // Cannot overflow: both terms are below 2**112; the sums' size is checked below.
            unchecked {
                net += uint112(current >> 32);
                fee += current >> 144;
            }
        } else {
            _reuse(ring, day, current, providerId, token);
        }
        _storeBucket(bucket, day, net, fee);
    }

    /// @dev Prepares the ring slot of `day` that holds another day (`current`): that older day
    /// is at least 32 days back, hence matured, and its money is released; an empty slot gets
    /// its pending bit (a released slot keeps its pending bit cleared until reused).
    function _reuse(
        Ring storage ring,
        uint256 day,
        uint256 current,
        uint256 providerId,
        address token
    ) private {
        if (current >> 32 != 0) {
            _credit(_providers[providerId], token, uint112(current >> 32), current >> 144);
        } else {
            ring.pending |= 1 << (day % _RING_SIZE);
        }
    }

    /// @dev Credits a non-refundable purchase's money to the provider and the treasury's fees.
    function _payAtOnce(uint256 providerId, address token, uint256 net, uint256 fee) private {
        _credited[_providers[providerId]][token] += net;
        if (fee != 0) _fees[token] += fee;
    }

    /// @dev Writes an access record with one SSTORE (the layout of `Access`: source in the
    /// lowest byte, then grantedAt, refundDeadline and digest). `block.timestamp` and deadlines
    /// (at most 30 days later) fit in 40 bits for the next 30,000 years.
    function _storeAccess(
        Access storage record,
        AccessSource source,
        uint256 deadline,
        bytes21 digest
    ) private {
        uint256 word = uint256(uint8(source)) | (block.timestamp << 8) | (deadline << 48)
            | (uint256(uint168(digest)) << 88);
        assembly ("memory-safe") {
            sstore(record.slot, word)
        }
    }

    /// @dev Writes a bucket with one SSTORE; reverts if an amount does not fit in 112 bits.
    function _storeBucket(Bucket storage bucket, uint256 day, uint256 net, uint256 fee) private {
        if ((net | fee) >> 112 != 0) {
            revert SafeCast.SafeCastOverflowedUintDowncast(112, net > fee ? net : fee);
        }
        uint256 word = day | (net << 32) | (fee << 144);
        assembly ("memory-safe") {
            sstore(bucket.slot, word)
        }
    }

    /// @dev Credits released money (the fee to the treasury's fees) and emits Released.
    function _credit(address provider, address token, uint256 net, uint256 fee) private {
        if (net != 0) _credited[provider][token] += net;
        if (fee != 0) _fees[token] += fee;
        emit Released(provider, token, net, fee);
    }

    /// @dev Moves every matured bucket of the provider's ring to credited balances.
    function _release(address provider, address token) private {
        uint256 providerId = _providerIds[provider];
        if (providerId == 0) return;
        Ring storage ring = _rings[_key(providerId, token)];
        uint256 pending = ring.pending;
        if (pending == 0) return;
        uint256 today = block.timestamp / 1 days;
        uint256 net;
        uint256 fee;
        uint256 stillPending = pending;
        for (uint256 i; i < _RING_SIZE; ++i) {
            if (pending & (1 << i) == 0) continue;
            Bucket storage bucket = ring.buckets[i];
            uint256 word;
            assembly ("memory-safe") {
                word := sload(bucket.slot)
            }
            uint256 day = uint32(word);
            if (day > today) continue;
            net += uint112(word >> 32);
            fee += word >> 144;
            // Keep the day so the slot stays non-zero: reusing it costs 2,900 gas, not 20,000.
            _storeBucket(bucket, day, 0, 0);
            stillPending &= ~(1 << i);
        }
        if (stillPending == pending) return;
        ring.pending = stillPending;
        if (net != 0 || fee != 0) _credit(provider, token, net, fee);
    }

    /// @dev Sums the pending (`matured == false`) or matured (`true`) buckets of a ring.
    function _sumRing(address provider, address token, bool matured)
        private
        view
        returns (uint256 net, uint256 fee)
    {
        uint256 providerId = _providerIds[provider];
        if (providerId == 0) return (0, 0);
        Ring storage ring = _rings[_key(providerId, token)];
        uint256 pending = ring.pending;
        uint256 today = block.timestamp / 1 days;
        for (uint256 i; pending != 0 && i < _RING_SIZE; ++i) {
            if (pending & (1 << i) == 0) continue;
            Bucket storage b = ring.buckets[i];
            if ((b.day <= today) == matured) {
                net += b.net;
                fee += b.fee;
            }
        }
    }

    /// @dev Takes exactly `amount` of `token` from the caller; rejects fee-on-transfer and
    /// rebasing tokens by checking this contract's balance delta.
    function _pull(address token, uint256 amount) private {
        uint256 before = _selfBalance(token);
        _transferIn(token, amount);
        uint256 balance = _selfBalance(token);
        // Checked addition: a (broken) token balance near 2**256 reverts rather than wraps.
        if (balance != before + amount) {
            // Cannot underflow: only subtracted when balance > before.
            unchecked {
                revert TransferShortfall(token, amount, balance > before ? balance - before : 0);
            }
        }
    }

    /// @dev `token.transferFrom(msg.sender, address(this), amount)` with SafeERC20's rules (a
    /// revert is bubbled up; `false`, or a short non-empty answer, reverts with
    /// SafeERC20FailedOperation; no answer is accepted, as USDT gives none) without its memory
    /// bookkeeping. A token without code cannot get here: `_selfBalance` ran first and reverts
    /// on an empty answer.
    function _transferIn(address token, uint256 amount) private {
        assembly ("memory-safe") {
            // Call data in free memory (not claimed: nothing else runs before it is dropped).
            let ptr := mload(0x40)
            mstore(ptr, shl(224, 0x23b872dd)) // transferFrom(address,address,uint256)
            mstore(add(ptr, 0x04), caller())
            mstore(add(ptr, 0x24), address())
            mstore(add(ptr, 0x44), amount)
            let ok := call(gas(), token, 0, ptr, 0x64, 0x00, 0x20)
            if iszero(ok) {
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
            // Success is no answer at all, or a 32-byte (or longer) answer equal to true.
            if returndatasize() {
                if iszero(and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))) {
                    mstore(0x00, 0x5274afe7) // SafeERC20FailedOperation(address)
                    mstore(0x20, token)
                    revert(0x1c, 0x24)
                }
            }
        }
    }

    /// @dev `token.balanceOf(address(this))` in scratch memory; bubbles up a revert and reverts
    /// on a short answer (for instance from an address without code).
    function _selfBalance(address token) private view returns (uint256 amount) {
        assembly ("memory-safe") {
            mstore(0x00, 0x70a08231) // balanceOf(address)
            mstore(0x20, address())
            // Yul evaluates arguments right to left: the call runs before returndatasize().
            if iszero(and(gt(returndatasize(), 0x1f), staticcall(gas(), token, 0x1c, 0x24, 0, 0x20))) {
                let ptr := mload(0x40)
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
            amount := mload(0x00)
        }
    }

    /// @dev Sends native coin, reverting with NativeTransferFailed if the recipient refuses it.
    function _sendNative(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert NativeTransferFailed(to, amount);
    }

    /// @dev Sets or clears the re-entrancy guard of ReentrancyGuardTransient.
    function _setGuard(bool entered) private {
        _reentrancyGuardStorageSlot().asBoolean().tstore(entered);
    }

    /// @dev Reverts with InvalidCourseId for ids of 2**96 and more, UnknownCourse for unknown ids.
    function _requireCourse(uint256 courseId) private view returns (CourseRecord storage c) {
        if (courseId > _MAX_COURSE_ID) revert InvalidCourseId(courseId);
        c = _courses[courseId];
        if (c.providerId == 0) revert UnknownCourse(courseId);
    }

    /// @dev Reverts unless the caller is the course's provider or one of its delegates.
    function _requireManager(uint256 courseId) private view returns (CourseRecord storage c) {
        c = _requireCourse(courseId);
        address provider = _providers[c.providerId];
        if (msg.sender != provider && !_delegates[provider][msg.sender]) {
            revert NotCourseManager(courseId, msg.sender);
        }
    }

    /// @dev Reverts with RefundWindowTooLong above `MAX_REFUND_WINDOW`.
    function _checkRefundWindow(uint32 refundWindow) private pure {
        if (refundWindow > MAX_REFUND_WINDOW) {
            revert RefundWindowTooLong(refundWindow, MAX_REFUND_WINDOW);
        }
    }

    /// @dev Whether bit `index` of the allowlist bitmap is set.
    function _isAllowed(uint256 bits, uint256 index) private pure returns (bool) {
        return (bits >> index) & 1 != 0;
    }

    /// @dev `_key` for a course id that no earlier check has bounded (InvalidCourseId).
    function _courseKey(uint256 courseId, address account) private pure returns (uint256) {
        if (courseId > _MAX_COURSE_ID) revert InvalidCourseId(courseId);
        return _key(courseId, account);
    }

    /// @dev One mapping key for a (small id, address) pair: the id in the high 96 bits, the
    /// address in the low 160. One keccak per lookup instead of two for a nested mapping. Larger
    /// ids would alias smaller ones (`id + 2**96` shifts to the same key): callers pass provider
    /// ids (uint32) or course ids already bounded by `_requireCourse`, `_quote` or `_courseKey`.
    function _key(uint256 id, address account) private pure returns (uint256) {
        return (id << 160) | uint160(account);
    }

    /// @dev The first day (days since the epoch) that starts after `deadline`.
    function _releaseDay(uint256 deadline) private pure returns (uint256) {
        return deadline / 1 days + 1;
    }

    /// @dev bytes21 of keccak256(abi.encode(payer, token, amount, fee)), hashed in scratch
    /// memory past the free memory pointer (never allocated, so nothing is left behind).
    function _digest(address payer, address token, uint256 amount, uint256 fee)
        private
        pure
        returns (bytes21 digest)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, payer)
            mstore(add(ptr, 0x20), token)
            mstore(add(ptr, 0x40), amount)
            mstore(add(ptr, 0x60), fee)
            digest := and(keccak256(ptr, 0x80), not(0xffffffffffffffffffffff))
        }
    }
}
