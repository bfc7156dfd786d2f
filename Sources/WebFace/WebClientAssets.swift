import ChatCore
import Crypto
import NIOCore

/// The browser client (`web/`), compiled into the binary by the EmbedFiles plugin. Every
/// file but the page is named by its content's hash in the page's links (`/app.js?v=HASH`), so
/// browsers may keep it forever and still see a new build at once; the page itself is revalidated.
package struct WebClientAssets: Sendable {
    package struct Asset: Sendable {
        package let contentType: String
        package let body: ByteBuffer
        /// The content hash (`v=`) that makes the asset cacheable forever; nil for the page.
        package let version: String?
    }

    private let assets: [String: Asset]

    package init(files: [(name: String, text: String)] = EmbeddedWebClient.all) {
        var assets: [String: Asset] = [:]
        var versions: [String: String] = [:]
        for file in files where !file.name.hasSuffix(".html") {
            let digest = SHA256.hash(data: Array(file.text.utf8))
            let version = digest.prefix(6).map { byte in
                let hex = String(byte, radix: 16)
                return hex.count == 1 ? "0" + hex : hex
            }.joined()
            versions[file.name] = version
            assets["/" + file.name] = Asset(contentType: Self.contentType(of: file.name), body: ByteBuffer(string: file.text), version: version)
        }
        for file in files where file.name.hasSuffix(".html") {
            var page = file.text
            for (name, version) in versions {
                page = page.replacing("\"/\(name)\"", with: "\"/\(name)?v=\(version)\"")
            }
            assets["/" + file.name] = Asset(contentType: "text/html; charset=utf-8", body: ByteBuffer(string: page), version: nil)
        }
        assets["/"] = assets["/index.html"]
        self.assets = assets
    }

    /// The asset at `path` (without its query).
    package subscript(path: String) -> Asset? { assets[path] }

    private static func contentType(of name: String) -> String {
        switch name.split(separator: ".").last {
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "webmanifest": "application/manifest+json"
        default: "application/octet-stream"
        }
    }
}
