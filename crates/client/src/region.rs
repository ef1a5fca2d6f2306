//! Where a client sends its requests: a base URL, given directly or as a Mimecast region.

use std::str::FromStr;

/// Mimecast's API 1.0 regions (the "Global Base URLs" page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Europe (excluding Germany).
    Eu,
    /// Germany.
    De,
    /// United States.
    Us,
    /// United States (USB).
    Usb,
    /// United States public sector.
    UsPcom,
    /// Canada.
    Ca,
    /// South Africa.
    Za,
    /// Australia.
    Au,
    /// Offshore (Jersey).
    Offshore,
}

impl Region {
    /// Every region.
    pub const ALL: [Region; 9] = [
        Region::Eu,
        Region::De,
        Region::Us,
        Region::Usb,
        Region::UsPcom,
        Region::Ca,
        Region::Za,
        Region::Au,
        Region::Offshore,
    ];

    /// The region's API 1.0 base URL.
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Eu => "https://eu-api.mimecast.com",
            Region::De => "https://de-api.mimecast.com",
            Region::Us => "https://us-api.mimecast.com",
            Region::Usb => "https://usb-api.mimecast.com",
            Region::UsPcom => "https://uspcom-api.mimecast-pscom-us.com",
            Region::Ca => "https://ca-api.mimecast.com",
            Region::Za => "https://za-api.mimecast.com",
            Region::Au => "https://au-api.mimecast.com",
            Region::Offshore => "https://je-api.mimecast.com",
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Region::Eu => "eu",
            Region::De => "de",
            Region::Us => "us",
            Region::Usb => "usb",
            Region::UsPcom => "uspcom",
            Region::Ca => "ca",
            Region::Za => "za",
            Region::Au => "au",
            Region::Offshore => "je",
        }
    }
}

/// A region name that is not one of Mimecast's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?}; regions are eu, de, us, usb, uspcom, ca, za, au, je (offshore)")]
pub struct UnknownRegion(pub String);

impl FromStr for Region {
    type Err = UnknownRegion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let wanted = match lower.as_str() {
            "offshore" | "jersey" => "je",
            "us-pcom" | "us-public-sector" | "pscom" => "uspcom",
            other => other,
        };
        Region::ALL.into_iter().find(|r| r.name() == wanted).ok_or_else(|| UnknownRegion(s.to_owned()))
    }
}

/// The API 2.0 base URL (one global host).
pub const API2_BASE_URL: &str = "https://api.services.mimecast.com";

/// Trims a base URL to `scheme://host[:port][/prefix]` with no trailing slash.
pub fn normalize_base_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_and_map() {
        assert_eq!("EU".parse::<Region>().unwrap().base_url(), "https://eu-api.mimecast.com");
        assert_eq!("offshore".parse::<Region>().unwrap(), Region::Offshore);
        assert_eq!("uspcom".parse::<Region>().unwrap().base_url(), "https://uspcom-api.mimecast-pscom-us.com");
        assert!("mars".parse::<Region>().is_err());
        for r in Region::ALL {
            assert_eq!(r.name().parse::<Region>().unwrap(), r);
        }
        assert_eq!(normalize_base_url(" http://x:1/ "), "http://x:1");
    }
}
