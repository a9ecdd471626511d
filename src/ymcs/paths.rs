//! Every YMCS open API v2 path in one place. Sources disagree on some of them (noted): correct
//! them here and nowhere else.

/// Token: Basic auth with the access key, `{"grant_type":"client_credentials"}`.
pub const TOKEN: &str = "/v2/token";
/// Device-management sites: `{skip, limit, autoCount, filter:{name}}`.
pub const LIST_SITES: &str = "/v2/dm/listSites";
/// Devices: `{skip, limit, autoCount, filter:{siteId, mac}}`.
pub const LIST_DEVICES: &str = "/v2/dm/listDevices";
/// Add devices to a site by MAC: `{siteId, macs:[...]}` (batch answer).
pub const ADD_DEVICES_BY_MAC: &str = "/v2/dm/addDevicesByMac";
/// MAC → device id: `{deviceType, deviceIds:[mac], deviceIdType:"mac"}`.
pub const DEVICE_ID: &str = "/v2/dm/deviceId";
/// Reboot: `{deviceIds, deviceType}` (batch answer).
pub const REBOOT: &str = "/v2/dm/device/reboot";
/// RPS servers: list `{skip, limit}`, add `{serverName (≤20), url (≤512), authName?, password?}`.
pub const RPS_LIST_SERVERS: &str = "/v2/rps/listServers";
pub const RPS_ADD_SERVER: &str = "/v2/rps/servers";
/// RPS devices: list `{skip, limit, filter:{mac}}`.
pub const RPS_LIST_DEVICES: &str = "/v2/rps/listDevices";
/// One device to RPS by serial number: `{mac, sn, serverId?, uniqueServerUrl?, authName?,
/// password?, remark?}` (the call Yealink support points ordinary accounts to).
pub const RPS_ADD_DEVICE: &str = "/v2/rps/devices";
/// Bulk add to RPS by MAC: `{serverId, macs, authName?, password?}`. Refused (403) to ordinary
/// accounts [domain.md §5]. Also seen as `/v2/rps/addDevices`.
pub const RPS_ADD_DEVICES: &str = "/v2/rps/addDevicesByMac";
/// Bulk delete from RPS: `{macs}`. Also seen as `/v2/rps/deleteDevices`.
pub const RPS_DEL_DEVICES: &str = "/v2/rps/delDevices";

/// Most records a list call returns per page.
pub const PAGE: u32 = 100;
/// Most MACs in one batch call.
pub const BATCH: usize = 100;

/// Region base URLs.
pub fn region_url(region: &str) -> Option<&'static str> {
    match region {
        "us" => Some("https://us-api.ymcs.yealink.com"),
        "eu" => Some("https://eu-api.ymcs.yealink.com"),
        "au" => Some("https://au-api.ymcs.yealink.com"),
        _ => None,
    }
}

/// YMCS error codes with a meaning for us.
pub const ALREADY_EXISTS: i64 = 800003;
pub const OTHER_ORGANISATION: i64 = 800004;
pub const NONCE_REUSED: i64 = 500403;
