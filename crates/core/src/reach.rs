//! Reach: how far into an organization a credential sees: the whole
//! organization, one project, or one environment.

/// An organization, optionally narrowed to a project, optionally to one of
/// its environments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reach {
    pub organization_id: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
}

impl Reach {
    pub fn organization(organization_id: impl Into<String>) -> Self {
        Self {
            organization_id: organization_id.into(),
            project_id: None,
            environment_id: None,
        }
    }

    /// True when everything `other` reaches is inside `self`.
    pub fn covers(&self, other: &Reach) -> bool {
        if self.organization_id != other.organization_id {
            return false;
        }
        match (&self.project_id, &other.project_id) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) if a != b => false,
            (Some(_), Some(_)) => match (&self.environment_id, &other.environment_id) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a == b,
            },
        }
    }

    /// A project-wide reach.
    pub fn project(organization_id: &str, project_id: &str) -> Self {
        Self {
            organization_id: organization_id.to_string(),
            project_id: Some(project_id.to_string()),
            environment_id: None,
        }
    }

    /// One environment's reach.
    pub fn environment(organization_id: &str, project_id: &str, environment_id: &str) -> Self {
        Self {
            organization_id: organization_id.to_string(),
            project_id: Some(project_id.to_string()),
            environment_id: Some(environment_id.to_string()),
        }
    }

    /// `wanted`, when this reach wholly covers it: what a new credential
    /// made by a credential of this reach may reach (SPEC §3).
    pub fn grant(&self, wanted: Reach) -> Result<Reach, ReachError> {
        if self.covers(&wanted) {
            Ok(wanted)
        } else {
            Err(ReachError {
                held: self.level(),
                wanted: wanted.level(),
            })
        }
    }

    /// True when a resource in this project (and environment, if any) is
    /// visible to this reach.
    pub fn sees_project(&self, project_id: &str) -> bool {
        self.project_id.as_deref().is_none_or(|p| p == project_id)
    }

    pub fn sees_environment(&self, project_id: &str, environment_id: &str) -> bool {
        self.sees_project(project_id)
            && self
                .environment_id
                .as_deref()
                .is_none_or(|e| e == environment_id)
    }

    /// `organization`, `project` or `environment`.
    pub fn level(&self) -> &'static str {
        match (&self.project_id, &self.environment_id) {
            (None, _) => "organization",
            (Some(_), None) => "project",
            (Some(_), Some(_)) => "environment",
        }
    }
}

/// A credential asked for a reach wider than its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {held}-scoped credential cannot create a {wanted}-wide one")]
pub struct ReachError {
    pub held: &'static str,
    pub wanted: &'static str,
}

impl ReachError {
    /// The field that asked for too much: `environment_id` or `project_id`.
    pub fn field(&self) -> &'static str {
        if self.wanted == "environment" {
            "environment_id"
        } else {
            "project_id"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: Option<&str>, e: Option<&str>) -> Reach {
        Reach {
            organization_id: "org_1".into(),
            project_id: p.map(Into::into),
            environment_id: e.map(Into::into),
        }
    }

    /// Narrower reaches are covered by wider ones, never the reverse.
    #[test]
    fn covers_is_a_containment_order() {
        let org = r(None, None);
        let prj = r(Some("p1"), None);
        let env = r(Some("p1"), Some("e1"));
        assert!(org.covers(&prj) && org.covers(&env) && prj.covers(&env));
        assert!(!env.covers(&prj) && !prj.covers(&org));
        assert!(!prj.covers(&r(Some("p2"), None)));
        assert!(!env.covers(&r(Some("p1"), Some("e2"))));
        let mut other_org = org.clone();
        other_org.organization_id = "org_2".into();
        assert!(!org.covers(&other_org));
    }

    /// A grant is the wanted reach when covered, else an error naming both
    /// levels and the field that asked for too much.
    #[test]
    fn grants_never_widen() {
        let env = r(Some("p1"), Some("e1"));
        assert_eq!(r(None, None).grant(env.clone()), Ok(env.clone()));
        let err = env.grant(r(Some("p1"), None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a environment-scoped credential cannot create a project-wide one"
        );
        assert_eq!(err.field(), "project_id");
        let err = r(Some("p1"), None)
            .grant(r(Some("p2"), Some("e9")))
            .unwrap_err();
        assert_eq!(err.field(), "environment_id");
        assert_eq!(Reach::environment("org_1", "p1", "e1"), env,);
    }
}
