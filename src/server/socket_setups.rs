//! The Socket.IO setups the server's Engine.IO endpoints serve: the surfaces' (Push-Alt's at
//! `/ws`) and the embedding program's at `/socket.io/`. Apart from [`super::engineio`] so that
//! the state, which holds the endpoints, does not import the surfaces that use the state.

use std::sync::Arc;

use super::engineio::{EngineIo, ProgramIo, options};
use crate::apps::AppCache;
use crate::config::SocketIoConfig;
use crate::core::Realtime;
use crate::origins::GlobalOrigins;
use crate::surfaces::pushalt;
use crate::transport::engineio::{EioError, Endpoint, Handshake, Protocol};
use crate::transport::socketio::{Admit, Admitted, DEFAULT_RULES, Namespace, SetupError, SocketIo};

/// The core app Engine.IO sessions belong to until the Socket.IO layer puts each socket in the
/// app its token names.
const SESSIONS_APP: &str = "engine.io";

/// The server's two Engine.IO endpoints: Push-Alt's namespace at `/ws` (its handlers' services
/// in `pushalt`), its handshakes' Origin checked against the global list (SPEC §5), and
/// `program`'s setup at `/socket.io/` (without one, the main namespace with no handlers;
/// Hestia's rule, SPEC §6's CORS `*`, comes with its surface). A program's setup that names no
/// app puts its connections in `default_app`, under that app's limits.
pub fn build(
    config: &SocketIoConfig,
    realtime: &Realtime,
    origins: &Arc<GlobalOrigins>,
    shutdown: &super::Shutdown,
    pushalt: pushalt::socketio::Deps,
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
    let program: Arc<dyn Protocol> = match program {
        Some(ProgramIo::EngineIo(make)) => make(realtime),
        Some(ProgramIo::SocketIo(setup)) => program_socketio(setup, config, realtime, apps, default_app)?,
        None => {
            let setup = SocketIo::new().namespace("/", Namespace::new());
            program_socketio(setup, config, realtime, apps, default_app)?
        }
    };
    Ok(EngineIo {
        pushalt: Endpoint::new(options.clone(), pushalt, shutdown.token()),
        hestia: Endpoint::new(options, program, shutdown.token()),
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
