// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title FeeOnTransferToken
/// @notice Test ERC-20 that burns 1 % of every transfer (mints and burns are exact), to check
/// that CourseMarket rejects tokens whose transfers deliver less than the amount sent.
contract FeeOnTransferToken is ERC20 {
    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    /// @notice Mint `amount` to `to`. Anyone may call it: this is a test token.
    /// @param to The recipient.
    /// @param amount The amount.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev Burns 1 % (rounded down) of transfers between two non-zero addresses.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 cut = value / 100;
            super._update(from, address(0), cut);
            // Cannot underflow: cut <= value.
            unchecked {
                value -= cut;
            }
        }
        super._update(from, to, value);
    }
}
