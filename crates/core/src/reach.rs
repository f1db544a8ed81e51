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
}
