package com.s3bguploader

import android.net.http.X509TrustManagerExtensions
import com.s3bguploader.core.PlatformTrust
import com.s3bguploader.core.TrustException
import java.io.ByteArrayInputStream
import java.security.KeyStore
import java.security.cert.CertificateFactory
import java.security.cert.X509Certificate
import javax.net.ssl.TrustManagerFactory
import javax.net.ssl.X509TrustManager

/**
 * The engine's certificate check through the platform's `X509TrustManager`:
 * with a null key store Android gives the system CAs plus, where the app's
 * network security config allows them, user CAs and pinned domains.
 * `X509TrustManagerExtensions` passes the host so that per-domain config
 * applies; the host name itself is verified by the engine.
 */
class AndroidTrust(private val trustManager: X509TrustManager) : PlatformTrust {
    private val extensions: X509TrustManagerExtensions? =
        try {
            X509TrustManagerExtensions(trustManager)
        } catch (e: IllegalArgumentException) {
            // A trust manager without the host-aware check (not Android's own).
            null
        }

    override fun checkServerTrusted(chainDer: List<ByteArray>, authType: String, host: String) {
        try {
            val factory = CertificateFactory.getInstance("X.509")
            val chain = chainDer.map { factory.generateCertificate(ByteArrayInputStream(it)) as X509Certificate }.toTypedArray()
            if (extensions != null) {
                extensions.checkServerTrusted(chain, authType, host)
            } else {
                trustManager.checkServerTrusted(chain, authType)
            }
        } catch (e: Exception) {
            throw TrustException.Untrusted("the device does not trust the certificate of $host: ${e.javaClass.simpleName}")
        }
    }

    companion object {
        /** The device's store (`keyStore` null) or a given one. */
        fun fromPlatform(keyStore: KeyStore? = null): AndroidTrust {
            val factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm())
            factory.init(keyStore)
            return AndroidTrust(factory.trustManagers.filterIsInstance<X509TrustManager>().first())
        }
    }
}
