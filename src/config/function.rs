//! `function_name`: which function the Lambda Invoke API is asked to run.
//!
//! The Invoke API takes a name, a name with a qualifier, a partial ARN or a full ARN in
//! its path (`/2015-03-31/functions/{FunctionName}/invocations`). Checking the syntax
//! here turns a typo into a `check_schema` error instead of a 502 on every request; the
//! rules are those of the API's `FunctionName` and `Qualifier` parameters.

/// A parsed `function_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// The value as configured, which is what goes (percent-encoded) into the path.
    pub name: String,
    /// The region of a full ARN.
    pub region: Option<String>,
    /// The version or alias written after the name (`my-function:live`).
    pub qualifier: Option<String>,
}

/// How the Invoke API is called and what the function exchanges with the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeConfig {
    pub function: FunctionRef,
    /// The `qualifier` property or, without it, the one written in the name.
    pub qualifier: Option<String>,
    /// The function's region, which the request is signed for.
    pub region: String,
    pub invocation_type: InvocationType,
    pub payload_format: PayloadFormat,
    pub function_error_status: u16,
    /// `log_type: Tail`.
    pub log_tail: bool,
    pub invoke_mode: InvokeMode,
}

/// `invoke_mode`: which Invoke API operation is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeMode {
    /// `Invoke`: the whole payload in one answer.
    Buffered,
    /// `InvokeWithResponseStream`: the payload as event-stream `PayloadChunk`s.
    ResponseStream,
}

impl InvokeMode {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "buffered" => Some(Self::Buffered),
            "response_stream" => Some(Self::ResponseStream),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "RequestResponse" => Some(Self::RequestResponse),
            "Event" => Some(Self::Event),
            "DryRun" => Some(Self::DryRun),
            _ => None,
        }
    }

    /// The `X-Amz-Invocation-Type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestResponse => "RequestResponse",
            Self::Event => "Event",
            Self::DryRun => "DryRun",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// API Gateway HTTP API payload 2.0, also what function URLs send.
    ApigwV2,
    /// API Gateway REST API proxy integration.
    ApigwV1,
    /// The request body is the payload; the payload is the response body.
    Raw,
}

impl PayloadFormat {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "apigw_v2" => Some(Self::ApigwV2),
            "apigw_v1" => Some(Self::ApigwV1),
            "raw" => Some(Self::Raw),
            _ => None,
        }
    }
}

/// Parses `function_name`; the error is the reason, for a `property ... validation
/// failed` message.
pub(crate) fn parse(value: &str) -> Result<FunctionRef, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let (region, rest) = match parts.as_slice() {
        ["arn", partition, "lambda", region, account, "function", rest @ ..] => {
            if !partition.starts_with("aws") || !is_region(region) || !is_account(account) {
                return Err(format!("{value:?} is not a Lambda function ARN"));
            }
            (Some((*region).to_owned()), rest)
        }
        ["arn", ..] => return Err(format!("{value:?} is not a Lambda function ARN")),
        [account, "function", rest @ ..] if is_account(account) => (None, rest),
        rest => (None, rest),
    };
    let (name, qualifier) = match rest {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        _ => return Err(format!("{value:?} is not a function name or ARN")),
    };
    if !is_name(name) {
        return Err(format!(
            "function name {name:?} must be 1 to 64 letters, digits, hyphens or underscores"
        ));
    }
    if let Some(q) = qualifier {
        check_qualifier(q)?;
    }
    Ok(FunctionRef {
        name: value.to_owned(),
        region,
        qualifier: qualifier.map(str::to_owned),
    })
}

/// A version number, `$LATEST` or an alias name.
pub(crate) fn check_qualifier(q: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&q.len())
        && q.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'$'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "qualifier {q:?} must be a version, $LATEST or an alias name"
        ))
    }
}

fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn is_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`: lowercase words and a number, by hyphens.
pub(crate) fn is_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && !region.starts_with('-')
        && !region.ends_with('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The Lambda API endpoint of a region (`amazonaws.com.cn` in the China partition).
pub fn default_endpoint(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://lambda.{region}.{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> FunctionRef {
        parse(value).unwrap_or_else(|e| panic!("{value}: {e}"))
    }

    #[test]
    fn names_and_arns() {
        assert_eq!(
            ok("my-function"),
            FunctionRef {
                name: "my-function".into(),
                region: None,
                qualifier: None
            }
        );
        assert_eq!(ok("my_fn:live").qualifier.as_deref(), Some("live"));
        assert_eq!(ok("my_fn:$LATEST").qualifier.as_deref(), Some("$LATEST"));
        let partial = ok("123456789012:function:f");
        assert_eq!((partial.region, partial.qualifier), (None, None));
        let full = ok("arn:aws:lambda:eu-west-1:123456789012:function:f:7");
        assert_eq!(full.region.as_deref(), Some("eu-west-1"));
        assert_eq!(full.qualifier.as_deref(), Some("7"));
        assert_eq!(
            ok("arn:aws-cn:lambda:cn-north-1:123456789012:function:f")
                .region
                .as_deref(),
            Some("cn-north-1")
        );
    }

    #[test]
    fn refuses_what_lambda_refuses() {
        for bad in [
            "",
            "my function",
            "f/../g",
            "f:",
            "f:a:b",
            "f:bad/alias",
            &"x".repeat(65),
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:us-east-1:123:function:f",
            "arn:aws:lambda:US-EAST-1:123456789012:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:f",
            "12345678901:function:f",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            default_endpoint("us-west-2"),
            "https://lambda.us-west-2.amazonaws.com"
        );
        assert_eq!(
            default_endpoint("cn-northwest-1"),
            "https://lambda.cn-northwest-1.amazonaws.com.cn"
        );
    }
}
