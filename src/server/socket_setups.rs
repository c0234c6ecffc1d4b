//! The Socket.IO setups the server's Engine.IO endpoints serve: the surfaces' (Push-Alt's at
//! `/ws`, Hestia's chat at `/socket.io/`) or, at `/socket.io/`, the embedding program's. Apart from [`super::engineio`] so that
//! the state, which holds the endpoints, does not import the surfaces that use the state.

use std::sync::Arc;

use super::engineio::{EngineIo, ProgramIo, options};
use crate::apps::AppCache;
use crate::config::SocketIoConfig;
use crate::core::Realtime;
use crate::origins::GlobalOrigins;
use crate::surfaces::{hestia, pushalt};
use crate::transport::engineio::{EioError, Endpoint, Handshake, Protocol};
use crate::transport::socketio::{Admit, Admitted, DEFAULT_RULES, SetupError, SocketIo};

/// The core app Engine.IO sessions belong to until the Socket.IO layer puts each socket in the
/// app its token names.
const SESSIONS_APP: &str = "engine.io";

/// The server's two Engine.IO endpoints: Push-Alt's namespace at `/ws` (its handlers' services
/// in `pushalt`), its handshakes' Origin checked against the global list (SPEC §5), and at
/// `/socket.io/` Hestia's chat socket (SPEC §6: any origin, CORS `*`) unless the embedding
/// program brings a setup of its own, which replaces it. A program's setup that names no app
/// puts its connections in `default_app`, under that app's limits.
#[allow(clippy::too_many_arguments)]
pub fn build(
    config: &SocketIoConfig,
    realtime: &Realtime,
    origins: &Arc<GlobalOrigins>,
    shutdown: &super::Shutdown,
    pushalt: pushalt::socketio::Deps,
    chat: hestia::socketio::Deps,
    program: Option<ProgramIo>,
    default_app: Option<Arc<str>>,
) -> Result<EngineIo, SetupError> {
    let options = options(config);
    let origins = origins.clone();
    let apps = &pushalt.apps.clone();
    let pushalt = pushalt::socketio::setup(pushalt)
        .app(SESSIONS_APP, DEFAULT_RULES, 0)
        .origins(move |origin| origins.allowed_now(origin))
        .connect_timeout_by_default(config.connect_timeout())
        .bind(realtime)?;
    let chat_served = program.is_none();
    let program: Arc<dyn Protocol> = match program {
        Some(ProgramIo::EngineIo(make)) => make(realtime),
        Some(ProgramIo::SocketIo(setup)) => program_socketio(setup, config, realtime, apps, default_app)?,
        None => hestia::socketio::setup(chat).connect_timeout_by_default(config.connect_timeout()).bind(realtime)?,
    };
    Ok(EngineIo {
        pushalt: Endpoint::new(options.clone(), pushalt, shutdown.token()),
        hestia: Endpoint::new(options, program, shutdown.token()),
        chat_served,
    })
}

/// A program's Socket.IO setup, bound: in `default_app` unless it chose its app, with the
/// configured connect timeout unless it set its own.
fn program_socketio(
    setup: SocketIo,
    config: &SocketIoConfig,
    realtime: &Realtime,
    apps: &AppCache,
    default_app: Option<Arc<str>>,
) -> Result<Arc<dyn Protocol>, SetupError> {
    let setup = match default_app {
        Some(app) => setup.admit_by_default(app_admission(apps.clone(), app)),
        None => setup,
    };
    Ok(setup.connect_timeout_by_default(config.connect_timeout()).bind(realtime)?)
}

/// Admits connections to `app` under its current limits (read at each handshake); a disabled
/// or deleted app refuses them.
fn app_admission(apps: AppCache, app: Arc<str>) -> Admit {
    Arc::new(move |_: &Handshake<'_>| {
        let found = apps.by_id(&app).filter(|a| a.enabled).ok_or(EioError::Forbidden)?;
        Ok(Admitted {
            app: found.id.clone(),
            rules: found.channel_rules(),
            max_connections: found.limits().max_connections,
        })
    })
}
