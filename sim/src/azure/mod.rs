//! Azure Resource Manager stand-in over HTTPS: Microsoft.Web sites and their
//! config, role assignments and definitions, managed identities, and a token
//! endpoint, to the published REST API specs.
