"""Kept for the modules that still import the link checks from here; they live in ``bridge.domain``."""

from bridge.domain import GENERIC_HANDLE, INSTAGRAM_HANDLE, MAX_URL, X_HANDLE, profile_url, safe_https_url, valid_handle

__all__ = ["GENERIC_HANDLE", "INSTAGRAM_HANDLE", "MAX_URL", "X_HANDLE", "profile_url", "safe_https_url",
           "valid_handle"]
