"""The customer side of accounts: sign-up and login (allauth adapter and forms), meter claims,
move-in/move-out, deletion requests, and the customer portal and API (`portal`). The models
stay in `accounts.models`, beside the user they hang off."""
