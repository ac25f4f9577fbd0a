// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title TestToken
/// @notice Freely mintable ERC-20 with EIP-2612 permit, for local chains and tests only: the
/// stand-in for the platform's ESN token and for a 6-decimals stablecoin.
contract TestToken is ERC20, ERC20Permit {
    uint8 private immutable _decimals;

    /// @param name_ Token name (also the EIP-712 domain name of permits).
    /// @param symbol_ Token symbol.
    /// @param decimals_ Decimals (18 for ESN, 6 for USDC).
    constructor(string memory name_, string memory symbol_, uint8 decimals_)
        ERC20(name_, symbol_)
        ERC20Permit(name_)
    {
        _decimals = decimals_;
    }

    /// @notice Mint `amount` to `to`. Anyone may call it: this is a test token.
    /// @param to The recipient.
    /// @param amount The amount in the smallest unit.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice The token's decimals.
    /// @return The number of decimals.
    function decimals() public view override returns (uint8) {
        return _decimals;
    }
}
