package com.s3bguploader.core.test

import com.s3bguploader.core.HttpHeader
import com.s3bguploader.core.JsEventObserver
import com.s3bguploader.core.JsException
import com.s3bguploader.core.NewFile
import com.s3bguploader.core.PartTask
import com.s3bguploader.core.PartTaskResult
import com.s3bguploader.core.PlatformTrust
import com.s3bguploader.core.TrustException
import com.s3bguploader.core.UploadEngine
import com.s3bguploader.core.UploaderException
import com.s3bguploader.core.configForBaseUrl
import com.s3bguploader.core.installPlatformTrust
import com.s3bguploader.core.removePlatformTrust
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.AfterClass
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.BeforeClass
import org.junit.Test
import java.io.ByteArrayInputStream
import java.io.File
import java.nio.file.Files
import java.security.KeyStore
import java.security.cert.CertificateFactory
import java.security.cert.X509Certificate
import java.util.Collections
import java.util.concurrent.TimeUnit
import javax.net.ssl.TrustManagerFactory
import javax.net.ssl.X509TrustManager
import kotlin.random.Random

/** A JSON field's raw value (`"text"` unquoted, numbers as written) in the first object that has it. */
private fun String.field(name: String): String? =
    Regex("\"$name\":(\"((?:[^\"\\\\]|\\\\.)*)\"|[^,}\\]]*)").find(this)?.let { m ->
        m.groups[2]?.value ?: m.groups[1]!!.value
    }

/** The engine's JSON events, as a React Native module would emit them. */
class JsonEvents : JsEventObserver {
    val events: MutableList<Pair<String, String>> = Collections.synchronizedList(ArrayList())
    override fun onEvent(name: String, json: String) {
        events.add(name to json)
    }
    fun snapshot(): List<Pair<String, String>> = synchronized(events) { events.toList() }
}

/**
 * The device's trust store as Android's module hands it to the engine: an
 * `X509TrustManager` from a `TrustManagerFactory` (here the JVM's, over a
 * key store holding the test's private CA, or the JVM's default store).
 */
class TrustManagerTrust(private val tm: X509TrustManager) : PlatformTrust {
    val hosts: MutableList<String> = Collections.synchronizedList(ArrayList())
    override fun checkServerTrusted(chainDer: List<ByteArray>, authType: String, host: String) {
        hosts.add(host)
        val cf = CertificateFactory.getInstance("X.509")
        val chain = chainDer.map { cf.generateCertificate(ByteArrayInputStream(it)) as X509Certificate }
        try {
            tm.checkServerTrusted(chain.toTypedArray(), authType)
        } catch (e: Exception) {
            throw TrustException.Untrusted(e.toString())
        }
    }

    companion object {
        fun of(keyStore: KeyStore?): TrustManagerTrust {
            val f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm())
            f.init(keyStore)
            return TrustManagerTrust(f.trustManagers.filterIsInstance<X509TrustManager>().first())
        }

        fun withCa(pem: String): TrustManagerTrust {
            val ks = KeyStore.getInstance(KeyStore.getDefaultType())
            ks.load(null, null)
            ks.setCertificateEntry("test-ca", CertificateFactory.getInstance("X.509").generateCertificate(pem.byteInputStream()))
            return of(ks)
        }
    }
}

/** `https-harness`: the reference backend and store over HTTPS, behind a private CA. */
class HttpsHarness(dir: File) : AutoCloseable {
    val url: String
    val storeDir: File
    val caPem: String
    private val process: Process

    init {
        val bin = System.getProperty("s3bgu.httpsHarness") ?: error("-Ds3bgu.httpsHarness is not set")
        val caFile = File(dir, "ca.pem")
        process = ProcessBuilder(bin, caFile.path).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        val out = process.inputStream.bufferedReader()
        url = out.readLine()?.removePrefix("backend ")?.trim() ?: error("https-harness exited: ${process.waitFor()}")
        storeDir = File(out.readLine()!!.removePrefix("store ").trim())
        caPem = caFile.readText()
    }

    fun objectBytes(key: String): ByteArray = File(storeDir, "uploads/$key").readBytes()

    override fun close() {
        process.outputStream.close()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}

class JsonAndTlsTest {
    companion object {
        @BeforeClass @JvmStatic fun startBackend() = ReferenceBackend.start()

        @AfterClass @JvmStatic fun stopBackend() = ReferenceBackend.stop()
    }

    private val dir: File = Files.createTempDirectory("s3bgu-kotlin-json").toFile().also { it.deleteOnExit() }

    private fun file(name: String, size: Int): File = File(dir, name).also { it.writeBytes(Random(size).nextBytes(size)) }

    private fun configJson(base: String, extra: String = ""): String =
        """{"startUploadUrl":"$base/startUpload","uploadUrlsUrl":"$base/getUploadUrls",""" +
            """"completeUrl":"$base/complete","maxPartsInFlight":3.0,""" +
            """"retry":{"maxAttempts":2,"baseDelayMs":10,"maxDelayMs":50}$extra}"""

    private suspend fun UploadEngine.settled(id: Double): String = withTimeout(60_000) {
        while (true) {
            val u = uploadsJson(id, null)
            if (u.field("state") in setOf("COMPLETED", "FAILED", "CANCELLED")) return@withTimeout u
            delay(20)
        }
        @Suppress("UNREACHABLE_CODE") error("unreachable")
    }

    @Test
    fun jsonCallsAndEventsCrossTheFfi() = runBlocking<Unit> {
        UploadEngine.open(File(dir, "json.db").path, true).use { engine ->
            engine.setConfigJson(configJson(ReferenceBackend.url))
            assertEquals("3", engine.configJson()!!.field("maxPartsInFlight"))
            val events = JsonEvents()
            engine.subscribeJson(events).use {
                val f = file("json.bin", 5 * 1024 * 1024 + 99)
                val added = engine.uploadFileJson(f.path, "album", "clip.mp4", """{"album":"x"}""")
                assertEquals("PENDING", added.field("state"))
                assertEquals("clip.mp4", added.field("fileName"))
                assertEquals(f.length().toString(), added.field("size"))
                val id = added.field("id")!!.toDouble()
                val done = engine.settled(id)
                assertEquals(done, "COMPLETED", done.field("state"))
                assertArrayEquals(f.readBytes(), ReferenceBackend.objectBytes(done.field("key")!!))
                val summary = engine.summaryJson("album")
                assertEquals("1", summary.field("completed"))
                assertEquals(f.length().toString(), summary.field("uploadedBytes"))

                val seen = events.snapshot()
                assertTrue(seen.toString(), seen.any { it.first == "onProgress" && it.second.field("totalBytes") == f.length().toString() })
                val states = seen.filter { it.first == "onStateChange" }.map { it.second.field("state") }
                assertEquals("PENDING", states.first())
                assertEquals("COMPLETED", states.last())
                assertTrue(seen.all { it.first == "onProgress" || it.first == "onStateChange" })

                // Rejections carry the stable code for the promise.
                val e = try {
                    engine.pauseJson(1.5, null)
                    fail("a fractional id was accepted")
                    throw IllegalStateException()
                } catch (e: JsException.Rejected) {
                    e
                }
                assertEquals("invalid_argument", e.code)
                val bad = try {
                    engine.setConfigJson("""{"startUploadUrl":"nope"}""")
                    throw IllegalStateException("accepted")
                } catch (e: JsException.Rejected) {
                    e
                }
                assertEquals("invalid_config", bad.code)
            }
        }
    }

    @Test
    fun failuresOutsideTheJsonCallsCarryTheEngineCodes() {
        val dir = Files.createTempDirectory("s3bgu-codes").toFile()
        try {
            val corrupt = File(dir, "corrupt.db")
            corrupt.writeText("this is a text file, not a queue\n".repeat(300))
            // The JS-facing open rejects as the JSON calls do.
            val rejected = try {
                UploadEngine.openJson(corrupt.path, false)
                throw IllegalStateException("a corrupt queue opened")
            } catch (e: JsException.Rejected) {
                e
            }
            assertEquals("database_corrupt", rejected.code)
            // The platform's own open: the same code, from the engine.
            val thrown = try {
                UploadEngine.open(corrupt.path, false)
                throw IllegalStateException("a corrupt queue opened")
            } catch (e: UploaderException) {
                e
            }
            assertEquals("database_corrupt", thrown.errorCode())
            assertTrue(thrown.errorDetail(), thrown.errorDetail().contains("set it aside"))

            val engine = UploadEngine.openJson(File(dir, "queue.db").path, false)
            runBlocking { engine.shutdown() }
            val shut = try {
                engine.setFileOpener(null)
                throw IllegalStateException("a shut-down engine took an opener")
            } catch (e: UploaderException) {
                e
            }
            assertEquals("shutdown", shut.errorCode())
            engine.close()
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun aTrustThatAcceptsAnythingIsRefused() {
        val acceptAll = object : PlatformTrust {
            override fun checkServerTrusted(chainDer: List<ByteArray>, authType: String, host: String) {}
        }
        try {
            installPlatformTrust(acceptAll)
            fail("an accept-anything trust was installed")
        } catch (e: UploaderException.InvalidArgument) {
            assertTrue(e.message, e.message!!.contains("accept any server"))
        } finally {
            removePlatformTrust()
        }
        // The JVM's own trust manager refuses the probe, so it is installed.
        val jvm = TrustManagerTrust.of(null)
        try {
            installPlatformTrust(jvm)
            assertEquals(listOf("trust-probe.s3bgu.invalid"), jvm.hosts.toList())
        } finally {
            removePlatformTrust()
        }
    }

    @Test
    fun textFormsOfRecordsShowNoSecret() {
        val url = "https://s3.example/b/k?partNumber=1&X-Amz-Credential=CRED-MARKER&X-Amz-Signature=SIG-MARKER"
        val task = PartTask(
            taskId = "task-1", upload = 7L, partNumber = 3u, url = url,
            filePath = "/staging/7-3.part", length = 5uL, earliestBeginMs = 0L, allowMetered = true,
        )
        val header = HttpHeader("Authorization", "Bearer TOKEN-MARKER")
        val config = configForBaseUrl("https://api.example/up").copy(
            startUploadUrl = "https://api.example/up/startUpload?apiKey=KEY-MARKER",
            headers = listOf(header),
        )
        val file = NewFile("content://media/doc/1?token=URI-MARKER", "t", null, """{"album":"PARAM-MARKER"}""")
        val results = listOf(
            PartTaskResult.NoResponse("The request timed out. ($url)"),
            PartTaskResult.Response(403u, null, null, "<Error><Url>$url</Url></Error>"),
        )
        // What a log line, string template or collection shows.
        val texts = listOf(task.toString(), "$task", listOf(task).toString(), header.toString(), config.toString(),
            file.toString()) + results.map { it.toString() }
        for (text in texts) {
            assertFalse(text, text.contains("MARKER"))
        }
        assertTrue(task.toString(), task.toString().contains("s3.example/b/k"))
        assertTrue(config.toString(), config.toString().contains("Authorization"))
        // The transport still gets the URL itself.
        assertEquals(url, task.url)
    }

    @Test
    fun aKotlinTrustManagerDecidesOnHttpsServers() = runBlocking<Unit> {
        HttpsHarness(dir).use { h ->
            assertTrue(h.url, h.url.startsWith("https://127.0.0.1:"))
            UploadEngine.open(File(dir, "tls.db").path, true).use { engine ->
                try {
                    // The JVM's own store does not know the private CA: refused.
                    installPlatformTrust(TrustManagerTrust.of(null))
                    engine.setConfigJson(configJson(h.url))
                    val refused = engine.settled(engine.uploadFileJson(file("a.bin", 1000).path, "t", null, "{}").field("id")!!.toDouble())
                    assertEquals(refused, "FAILED", refused.field("state"))
                    assertEquals("backend_unavailable", refused.field("code"))
                    assertTrue(refused, refused.contains("not trusted"))

                    // A store that holds it: backend calls and part uploads go through.
                    val device = TrustManagerTrust.withCa(h.caPem)
                    installPlatformTrust(device)
                    // Installing asked about a probe; only handshakes from here.
                    device.hosts.clear()
                    val f = file("b.bin", 5 * 1024 * 1024 + 5)
                    val done = engine.settled(engine.uploadFileJson(f.path, "t", null, "{}").field("id")!!.toDouble())
                    assertEquals(done, "COMPLETED", done.field("state"))
                    assertArrayEquals(f.readBytes(), h.objectBytes(done.field("key")!!))
                    assertTrue(device.hosts.toString(), device.hosts.isNotEmpty() && device.hosts.all { it == "127.0.0.1" })
                } finally {
                    removePlatformTrust()
                }
                // Without the hook, the same CA through the configuration.
                engine.setConfigJson(configJson(h.url, ""","extraRootCertificatesPem":["${h.caPem.replace("\n", "\\n")}"]"""))
                val g = file("c.bin", 3000)
                val viaConfig = engine.settled(engine.uploadFileJson(g.path, "t", null, "{}").field("id")!!.toDouble())
                assertEquals(viaConfig, "COMPLETED", viaConfig.field("state"))
            }
        }
    }
}
