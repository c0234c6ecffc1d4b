//! Accounts, shared by every surface: register, login, token checks, first-admin setup (from
//! the CLI, or over HTTP with the one-time setup token printed at start), and the changes an
//! account or an admin makes (profile, status). Surfaces shape the answers (Notif's, Hestia's,
//! Push-Alt's); the rules live here. A deactivated account can neither sign in nor use its
//! tokens, and a new password or a deactivation voids every token issued before it.

use std::net::IpAddr;
use std::time::Duration;

use crate::audit::{self, Refusal};
use crate::auth::jwt::{Jwt, TokenError};
use crate::auth::{RawToken, opaque, password};
use crate::config::AuthConfig;
use crate::ratelimit::{RateLimiter, address_key};
use crate::store::accounts::{AccountRecord, NewAccount};
use crate::store::tokens::SetupTokenUse;
use crate::store::{self, Store};

/// An account as callers see it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: String,
    pub is_admin: bool,
    pub active: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

impl From<AccountRecord> for Account {
    fn from(r: AccountRecord) -> Self {
        Self {
            id: r.id,
            username: r.username,
            email: r.email,
            name: r.name,
            is_admin: r.is_admin,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Fields of a registration, as loosely as clients send them.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("{0}")]
    Duplicate(&'static str),
    #[error("Invalid credentials.")]
    InvalidCredentials,
    #[error("Too many requests, please try again later.")]
    RateLimited(Duration),
    #[error("invalid or expired token")]
    Token,
    #[error("setup already completed")]
    AlreadySetUp,
    /// The setup token is missing, wrong, or already used.
    #[error("invalid setup token")]
    SetupToken,
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Password(password::PasswordError),
    /// Too many password checks in progress: come back in a second.
    #[error("Server busy, please try again shortly.")]
    Busy,
    #[error("issuing a token: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

impl From<password::PasswordError> for AccountError {
    fn from(e: password::PasswordError) -> Self {
        match e {
            password::PasswordError::Busy => Self::Busy,
            e => Self::Password(e),
        }
    }
}

impl From<TokenError> for AccountError {
    fn from(_: TokenError) -> Self {
        Self::Token
    }
}

/// Longest login name worth looking up: an email (usernames are 3–32 characters).
pub const MAX_LOGIN_CHARS: usize = 255;
/// Password lengths an account can have (SPEC §4).
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
/// How long a setup token printed at start works, in milliseconds: a day, so that one printed
/// to a log file long ago does not open a fresh server later.
pub const SETUP_TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;

/// The accounts service.
pub struct Accounts {
    store: Store,
    jwt: Jwt,
    /// Registrations and login attempts per client address (SPEC §6: one allowance for both).
    auth_per_ip: RateLimiter,
    /// Failed logins per login name (a success resets it).
    login_per_name: RateLimiter,
    /// The cap on argon2 work.
    passwords: password::Gate,
    config: AuthConfig,
    /// Ends the sessions already open on an account's tokens when they are voided (the chat
    /// closes its sockets): set once at start, by whoever holds such sessions.
    on_tokens_voided: std::sync::OnceLock<Box<dyn Fn(i64) + Send + Sync>>,
}

impl Accounts {
    pub fn new(store: Store, jwt_secret: &[u8], config: AuthConfig) -> Self {
        let jwt = Jwt::new(jwt_secret, i64::try_from(config.token_ttl_secs).unwrap_or(i64::MAX / 2));
        Self {
            store,
            jwt,
            auth_per_ip: RateLimiter::default(),
            login_per_name: RateLimiter::default(),
            passwords: password::Gate::default(),
            config,
            on_tokens_voided: std::sync::OnceLock::new(),
        }
    }

    /// Sets what ends an account's open sessions when its tokens are voided (a new password, a
    /// deactivation): sockets authenticated once, at connect, would otherwise outlive them.
    pub fn on_tokens_voided(&self, end_sessions: impl Fn(i64) + Send + Sync + 'static) {
        if self.on_tokens_voided.set(Box::new(end_sessions)).is_err() {
            tracing::warn!("accounts: the session hook was set twice; the first one stays");
        }
    }

    /// Forgets rate-limit buckets that have refilled (the server calls this periodically).
    pub fn sweep(&self) {
        self.auth_per_ip.sweep();
        self.login_per_name.sweep();
    }

    /// Buckets held by the login and registration limits (for tests and metrics).
    pub fn limiter_entries(&self) -> usize {
        self.auth_per_ip.len() + self.login_per_name.len()
    }

    /// Creates an account (never an admin) and a token for it.
    pub async fn register(&self, reg: Registration, ip: IpAddr) -> Result<(Account, String), AccountError> {
        self.take_address_token(ip, "register")?;
        let account = self.create(reg, false).await?;
        let token = self.jwt.issue(account.id, account.username.as_deref())?;
        Ok((account, token))
    }

    /// Checks a login (email or username) and returns a token. Unknown user and wrong
    /// password are one error, and take the same time. Names and passwords longer than any
    /// account can have are refused before anything is stored or hashed.
    pub async fn login(
        &self,
        login: Option<&str>,
        password: Option<&str>,
        ip: IpAddr,
    ) -> Result<(Account, String), AccountError> {
        let account = self.check_login(login, password, ip).await?;
        let token = self.jwt.issue(account.id, account.username.as_deref())?;
        Ok((account, token))
    }

    /// [`Accounts::login`] without the token: the account whose credentials these are (a
    /// deactivated one is refused like a wrong password), under the same limits.
    pub async fn check_login(
        &self,
        login: Option<&str>,
        password: Option<&str>,
        ip: IpAddr,
    ) -> Result<Account, AccountError> {
        let (Some(login), Some(password)) =
            (login.map(str::trim).filter(|l| !l.is_empty()), password.filter(|p| !p.is_empty()))
        else {
            return Err(AccountError::Invalid("Username and password are required."));
        };
        self.take_address_token(ip, "login")?;
        if login.chars().count() > MAX_LOGIN_CHARS || password.chars().count() > *PASSWORD_CHARS.end() {
            audit::refused(Refusal::FailedLogin, ip, login, &"longer than any account's");
            return Err(AccountError::InvalidCredentials);
        }
        // Taken up front so that concurrent attempts cannot overrun it; a success gives it back.
        let name = login.to_lowercase();
        let (per_name, window) = (f64::from(self.config.failed_logins_per_account), self.window_secs());
        self.login_per_name.check(name.as_str(), per_name / window, per_name).map_err(|wait| {
            audit::refused(Refusal::RateLimited, ip, login, &"failed logins for this name");
            AccountError::RateLimited(wait)
        })?;
        let record = match self.store.account_by_login(login).await {
            Ok(r) => Some(r),
            Err(store::Error::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let ok = self.passwords.verify(password.to_owned(), record.as_ref().map(|r| r.password_hash.clone())).await?;
        match record {
            Some(r) if ok && r.active => {
                self.login_per_name.forget(name.as_str());
                Ok(Account::from(r))
            }
            Some(_) if ok => {
                audit::refused(Refusal::FailedLogin, ip, login, &"account deactivated");
                Err(AccountError::InvalidCredentials)
            }
            _ => {
                audit::refused(Refusal::FailedLogin, ip, login, &"unknown name or wrong password");
                Err(AccountError::InvalidCredentials)
            }
        }
    }

    /// Takes one of the address's auth requests (`auth.requests_per_ip` per `auth.window_secs`).
    fn take_address_token(&self, ip: IpAddr, what: &str) -> Result<(), AccountError> {
        let per_ip = f64::from(self.config.requests_per_ip);
        self.auth_per_ip.check(&address_key(ip), per_ip / self.window_secs(), per_ip).map_err(|wait| {
            audit::refused(Refusal::RateLimited, ip, what, &"auth requests per address");
            AccountError::RateLimited(wait)
        })
    }

    fn window_secs(&self) -> f64 {
        self.config.window_secs.max(1) as f64
    }

    /// The account a bearer token names. A token of a deleted or deactivated account is
    /// refused, and so is one issued before the account's last new password or deactivation.
    pub async fn authenticate(&self, token: &str) -> Result<Account, AccountError> {
        let token = self.jwt.verify(token)?;
        match self.store.account_by_id(token.account_id).await {
            Ok(r) if r.active && token.issued_at_ms >= r.tokens_valid_after => Ok(r.into()),
            Ok(_) | Err(store::Error::NotFound) => Err(AccountError::Token),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the first admin (once, from the CLI) and gives it the apps pinned by
    /// configuration. The setup tokens printed at start are void afterwards.
    pub async fn setup_admin(&self, reg: Registration) -> Result<Account, AccountError> {
        if self.setup_done().await? {
            return Err(AccountError::AlreadySetUp);
        }
        let new = self.checked(reg, true).await?;
        self.insert_first_admin(None, new).await
    }

    /// While no admin exists: a fresh one-time setup token (stored hashed), for the server to
    /// print at start (SPEC §2). Each start makes one, good for [`SETUP_TOKEN_TTL_MS`]; any
    /// of them completes setup once, and setup voids them all. Expired ones are deleted here.
    pub async fn prepare_setup_token(&self) -> Result<Option<RawToken>, AccountError> {
        if self.store.count_admins().await? > 0 {
            return Ok(None);
        }
        self.store.delete_setup_tokens_before(store::now_ms() - SETUP_TOKEN_TTL_MS).await?;
        let token = opaque::generate();
        self.store.insert_setup_token(&opaque::hash(token.expose())).await?;
        Ok(Some(token))
    }

    /// Whether an admin exists, so setup is done.
    pub async fn setup_done(&self) -> Result<bool, AccountError> {
        Ok(self.store.count_admins().await? > 0)
    }

    /// Creates the first admin over HTTP with a setup token: [`AccountError::AlreadySetUp`]
    /// once an admin exists, [`AccountError::SetupToken`] for a token that is not one printed
    /// at start, is older than [`SETUP_TOKEN_TTL_MS`], or was used. The registration is checked
    /// and the password hashed before the token is used up, so a refused one leaves it valid.
    pub async fn complete_setup(&self, setup_token: &str, reg: Registration) -> Result<Account, AccountError> {
        if self.setup_done().await? {
            return Err(AccountError::AlreadySetUp);
        }
        let hash = opaque::hash(setup_token);
        let token = SetupTokenUse { hash: &hash, issued_after: store::now_ms() - SETUP_TOKEN_TTL_MS };
        let known = opaque::well_formed(setup_token)
            && match self.store.setup_token(token.hash, token.issued_after).await {
                Ok(stored) => opaque::matches(&stored, setup_token),
                Err(store::Error::NotFound) => false,
                Err(e) => return Err(e.into()),
            };
        if !known {
            return Err(AccountError::SetupToken);
        }
        let new = self.checked(reg, true).await?;
        self.insert_first_admin(Some(token), new).await
    }

    /// The first admin, made once whatever runs at the same time (see
    /// [`Store::insert_first_admin`]), and given the apps pinned by configuration.
    async fn insert_first_admin(
        &self,
        token: Option<SetupTokenUse<'_>>,
        new: NewAccount,
    ) -> Result<Account, AccountError> {
        let record = match self.store.insert_first_admin(token, new).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(AccountError::AlreadySetUp),
            Err(store::Error::NotFound) => return Err(AccountError::SetupToken),
            Err(store::Error::Conflict(_)) => return Err(AccountError::Duplicate("Email already registered")),
            Err(e) => return Err(e.into()),
        };
        self.store.adopt_ownerless_apps(record.id).await?;
        Ok(record.into())
    }

    /// A signed access token for `account` that lasts `ttl_secs`.
    pub fn issue_token(&self, account: &Account, ttl_secs: i64) -> Result<RawToken, AccountError> {
        Ok(RawToken::new(self.jwt.issue_for(account.id, account.username.as_deref(), ttl_secs)?))
    }

    /// Creates an account that is not an admin (an admin adding a user).
    pub async fn create_user(&self, reg: Registration) -> Result<Account, AccountError> {
        self.create(reg, false).await
    }

    /// One account.
    pub async fn get(&self, id: i64) -> Result<Account, AccountError> {
        Ok(self.store.account_by_id(id).await?.into())
    }

    /// A page of the accounts that are not admins, in id order.
    pub async fn users_page(&self, limit: i64, offset: i64) -> Result<Vec<Account>, AccountError> {
        Ok(self.store.accounts_page(true, limit, offset).await?.into_iter().map(Account::from).collect())
    }

    /// Applies `changes` to account `id`. A new password or a deactivation voids every token the
    /// account holds: access tokens issued until now (`tokens_valid_after`, checked by
    /// [`Accounts::authenticate`]) and its refresh tokens.
    pub async fn update(&self, id: i64, changes: AccountChanges) -> Result<Account, AccountError> {
        let mut record = self.store.account_by_id(id).await?;
        if let Some(name) = changes.name {
            record.name = check_name(&name)?.ok_or(AccountError::Invalid("Name is required."))?;
        }
        if let Some(email) = changes.email {
            let email = email.trim().to_lowercase();
            if !valid_email(&email) {
                return Err(AccountError::Invalid("Email is not a valid address."));
            }
            if record.email.as_deref() != Some(email.as_str()) && self.exists(&email).await? {
                return Err(AccountError::Duplicate("Email already registered"));
            }
            record.email = Some(email);
        }
        let new_password = changes.password.filter(|p| !p.is_empty());
        if let Some(password) = &new_password {
            check_password(password)?;
        }
        if let Some(password) = new_password.clone() {
            record.password_hash = self.passwords.hash(password).await?;
        }
        let deactivated = changes.active == Some(false) && record.active;
        if let Some(active) = changes.active {
            record.active = active;
        }
        if new_password.is_some() || deactivated {
            record.tokens_valid_after = store::now_ms();
        }
        let record = self.store.update_account(&record).await.map_err(|e| match e {
            store::Error::Conflict(_) => AccountError::Duplicate("Email already registered"),
            e => e.into(),
        })?;
        if new_password.is_some() || deactivated {
            self.store.delete_refresh_tokens_of(id).await?;
            if let Some(end_sessions) = self.on_tokens_voided.get() {
                end_sessions(id);
            }
        }
        Ok(record.into())
    }

    /// A token for an account (e.g. right after setup).
    pub fn token_for(&self, account: &Account) -> Result<String, AccountError> {
        Ok(self.jwt.issue(account.id, account.username.as_deref())?)
    }

    async fn create(&self, reg: Registration, is_admin: bool) -> Result<Account, AccountError> {
        let new = self.checked(reg, is_admin).await?;
        let record = self.store.insert_account(new).await.map_err(|e| match e {
            store::Error::Conflict(_) => AccountError::Duplicate("Username or email already registered"),
            e => e.into(),
        })?;
        Ok(record.into())
    }

    /// A registration checked (fields, uniqueness) and its password hashed: ready to insert.
    async fn checked(&self, reg: Registration, is_admin: bool) -> Result<NewAccount, AccountError> {
        let username = reg.username.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
        let email = reg.email.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
        let password = reg.password.filter(|p| !p.is_empty());
        let Some(password) = password.filter(|_| username.is_some() || email.is_some()) else {
            return Err(AccountError::Invalid("Username and password are required."));
        };
        if let Some(u) = &username {
            let n = u.chars().count();
            if !(3..=32).contains(&n) {
                return Err(AccountError::Invalid("Username must be from 3 to 32 characters."));
            }
            if u.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@') {
                return Err(AccountError::Invalid("Username may not contain spaces, control characters or @."));
            }
        }
        if let Some(e) = &email
            && !valid_email(e)
        {
            return Err(AccountError::Invalid("Email is not a valid address."));
        }
        check_password(&password)?;
        let name = reg.name.as_deref().map(check_name).transpose()?.flatten();
        if let Some(u) = &username
            && self.exists(u).await?
        {
            return Err(AccountError::Duplicate("Username already taken."));
        }
        if let Some(e) = &email
            && self.exists(e).await?
        {
            return Err(AccountError::Duplicate("Email already registered"));
        }
        let name = name
            .or_else(|| username.clone())
            .or_else(|| email.as_ref().and_then(|e| e.split('@').next().map(str::to_owned)));
        let password_hash = self.passwords.hash(password).await?;
        Ok(NewAccount { username, email, name: name.unwrap_or_default(), password_hash, is_admin })
    }

    async fn exists(&self, login: &str) -> Result<bool, AccountError> {
        match self.store.account_by_login(login).await {
            Ok(_) => Ok(true),
            Err(store::Error::NotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// A password an account may have: 8–128 characters.
fn check_password(password: &str) -> Result<(), AccountError> {
    if !PASSWORD_CHARS.contains(&password.chars().count()) {
        return Err(AccountError::Invalid("Password must be from 8 to 128 characters."));
    }
    Ok(())
}

/// A display name, trimmed: `None` when blank, refused past 255 characters.
fn check_name(name: &str) -> Result<Option<String>, AccountError> {
    let name = name.trim();
    if name.chars().count() > 255 {
        return Err(AccountError::Invalid("Name must be at most 255 characters."));
    }
    if name.chars().any(char::is_control) {
        return Err(AccountError::Invalid("Name may not contain control characters."));
    }
    Ok((!name.is_empty()).then(|| name.to_owned()))
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    /// A new password (empty: unchanged).
    pub password: Option<String>,
    pub active: Option<bool>,
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else { return false };
    e.len() <= 255
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The token of an `Authorization: Bearer …` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_bearer() {
        assert!(valid_email("a@b.co"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("@b.co"));
        assert!(!valid_email("a b@c.de"));
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    fn root() -> Registration {
        Registration {
            name: Some("Root".into()),
            username: None,
            email: Some("root@example.com".into()),
            password: Some("correct horse battery".into()),
        }
    }

    #[tokio::test]
    async fn a_setup_token_works_for_a_day_and_expired_ones_are_deleted() {
        let (store, _dir) = crate::store::temp_store().await;
        let accounts = Accounts::new(store.clone(), b"secret", AuthConfig::default());
        let old = accounts.prepare_setup_token().await.unwrap().unwrap();
        // Printed a day and a second ago (a start long past, its log kept somewhere).
        sqlx::query("UPDATE setup_tokens SET created_at = created_at - $1")
            .bind(SETUP_TOKEN_TTL_MS + 1000)
            .execute(store.pool())
            .await
            .unwrap();
        assert!(matches!(accounts.complete_setup(old.expose(), root()).await, Err(AccountError::SetupToken)));
        let fresh = accounts.prepare_setup_token().await.unwrap().unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM setup_tokens").fetch_one(store.pool()).await.unwrap();
        assert_eq!(rows, 1, "making a token deletes the expired ones");
        let admin = accounts.complete_setup(fresh.expose(), root()).await.unwrap();
        assert!(admin.is_admin);
        assert!(accounts.prepare_setup_token().await.unwrap().is_none(), "none once an admin exists");
    }
}
