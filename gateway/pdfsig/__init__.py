"""Signatures inside PDF attachments (the signed document itself): checked with pyHanko in a
bounded child process (worker), judged by ``[signing] pdf_signatures`` (verdict), and made
for development by `edxml-gateway pki sign-pdf` (signing)."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# pyHanko imports cryptography's DSA key class, which cryptography warns about on every start;
# no DSA key is used here, and the warning on an admin's terminal would only alarm
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"pyhanko\.")
